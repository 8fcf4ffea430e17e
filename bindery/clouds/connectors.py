"""Building the connector for a configured Product Cloud API (secrets decrypted only here)."""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session

from bindery.clouds.base import Connector, ConnectorError
from bindery.clouds.config import secret_of, settings_of
from bindery.clouds.kinds import spec_of
from bindery.clouds.spec import Target
from bindery.errors import BinderyError
from bindery.models.clouds import CloudApi
from bindery.settings import Settings


def connector_for(*, session: Session, settings: Settings, api: CloudApi) -> Connector:
    """The kind's connector (its spec's ``connect``) for one configured API."""
    target = Target(session=session, settings=settings, name=api.name, options=settings_of(api),
                    secret=secret_of(settings, api))
    return spec_of(api.kind).connect(target)


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
