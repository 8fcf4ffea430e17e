"""Kind ``azure-iot-hub``: one Azure IoT Hub's registry, through the azure-iot-hub SDK (connector:
``bindery/clouds/azure_hub.py``)."""

from __future__ import annotations

import re
from typing import Literal

from bindery.clouds.base import Connector
from bindery.clouds.spec import Checked, CloudApiOptions, KindSpec, Quota, Removal, Target, need_secret, option
from bindery.clouds.urls import check_url
from bindery.errors import FieldError
from bindery.secrets import Secret
from bindery.settings import Settings

BULK_LIMIT = 100  # devices one bulk registry call takes
HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*(:[0-9]{1,5})?")


class AzureIotHubOptions(CloudApiOptions):
    kind: Literal["azure-iot-hub"] = "azure-iot-hub"
    connection_string: str | None = option(
        "Service connection string", "The hub's connection string of a policy with registry write "
        "(HostName=…;SharedAccessKeyName=…;SharedAccessKey=…).", example="HostName=acme.azure-devices.net;…",
        max_length=4000, secret=True, required=True)


def parse_connection_string(text: str) -> dict[str, str]:
    parts = dict(part.split("=", 1) for part in text.split(";") if "=" in part)
    missing = [k for k in ("HostName", "SharedAccessKeyName", "SharedAccessKey") if not parts.get(k)]
    if missing:
        raise FieldError("connection_string", f"missing {', '.join(missing)} (expected an IoT Hub service "
                                              "connection string)")
    return parts


def check_host(host: str, *, allow_private: bool, must_resolve: bool) -> str:
    """The HostName is where the SDK sends the signed requests: held to the rule every kind's target keeps
    (public addresses only, unless BINDERY_ALLOW_PRIVATE_TARGETS=1)."""
    if not HOST.fullmatch(host):
        raise FieldError("connection_string", f"HostName {host[:80]!r} is not a host name")
    check_url(f"https://{host}", "connection_string", allow_private=allow_private, must_resolve=must_resolve)
    return host


def validate(_options: dict[str, str], given: Secret | None, settings: Settings, check: bool) -> Checked:
    secret = need_secret(given, "connection_string")
    parts = parse_connection_string(secret)
    check_host(parts["HostName"], allow_private=settings.allow_private_targets, must_resolve=check)
    return Checked({"host_name": parts["HostName"], "policy_name": parts["SharedAccessKeyName"]}, secret)


def connect(target: Target) -> Connector:
    from bindery.clouds.azure_hub import AzureHubConnector

    return AzureHubConnector(target.secret or "", timeout=target.timeout,
                             allow_private=target.settings.allow_private_targets)


SPEC = KindSpec(
    kind="azure-iot-hub", title="Azure IoT Hub (direct)", order=50,
    summary="Creates each device in one IoT Hub's registry with its certificate's thumbprint (X.509 "
            "self-signed), in bulk calls of up to 100.",
    options=AzureIotHubOptions, validate=validate,
    quota=Quota(rate=100 / 60, counts="device (registry operation)", tokens=float,
                source="IoT Hub S1: 100 registry operations a minute per unit"),
    connect=connect, removal=Removal(True), chunk_limit=BULK_LIMIT, bulk_size=BULK_LIMIT,
    secret="connection_string", target_of=lambda s: s.get("host_name", ""),
    reconcile="the registry's devices (a devices query, page by page)")
