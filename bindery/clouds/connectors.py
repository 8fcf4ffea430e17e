"""Building the connector for a configured Product Cloud API (secrets decrypted only here)."""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session

from bindery.clouds.base import Connector, ConnectorError
from bindery.clouds.config import secret_of, settings_of
from bindery.clouds.interop import InteropConnector, basic, bearer
from bindery.clouds.tokens import signing_key
from bindery.errors import BinderyError
from bindery.models.clouds import CloudApi
from bindery.settings import Settings

INTEROP_KINDS = ("aws", "azure", "other")


def connector_for(*, session: Session, settings: Settings, api: CloudApi) -> Connector:
    options = settings_of(api)
    timeout = float(options.get("timeout") or settings.http_timeout)
    if api.kind in INTEROP_KINDS:
        if api.kind == "other":
            auth = basic(secret_of(settings, api) or "")
        else:
            signer = signing_key(session=session, settings=settings)
            audience = options["audience"]
            auth = bearer(lambda: signer.token(audience))
        return InteropConnector(options["url"], auth, timeout=timeout, allow_private=settings.allow_private_targets,
                                max_request=int(options.get("chunk_size") or settings.provision_chunk_size))
    if api.kind == "aws-iot":
        from bindery.clouds.aws_iot import AwsIotConnector

        return AwsIotConnector(options, timeout=timeout, parallel=settings.aws_device_concurrency)
    if api.kind == "azure-iot-hub":
        from bindery.clouds.azure_hub import AzureHubConnector

        return AzureHubConnector(secret_of(settings, api) or "", timeout=timeout)
    raise ValueError(f"unknown kind {api.kind}")


def check_on_add(*, session: Session, settings: Settings, name: str) -> Callable[[CloudApi], None]:
    """The check `cloud-api add` runs before storing an API: one harmless call to the target."""

    def check(api: CloudApi) -> None:
        connector = connector_for(session=session, settings=settings, api=api)
        try:
            connector.check()
        except ConnectorError as exc:
            raise BinderyError(f"{name}: check failed: {exc} (add it without the check to store it anyway)") from None
        finally:
            connector.close()

    return check
