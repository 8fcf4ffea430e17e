"""Kind ``azure-dps``: individual enrollments in an Azure IoT Hub Device Provisioning Service, over its
service API (connector: ``bindery/clouds/azure_dps.py``; docs: ``docs/clouds/azure-dps.md``)."""

from __future__ import annotations

import re
from typing import Literal

from bindery.clouds.base import Connector
from bindery.clouds.spec import Checked, CloudApiOptions, KindSpec, Quota, Removal, Target, match, need_secret, option
from bindery.clouds.urls import check_url
from bindery.errors import FieldError
from bindery.secrets import Secret
from bindery.settings import Settings

BULK_LIMIT = 10  # enrollments one bulk operation takes
OPERATIONS_PER_MINUTE = 1000  # per unit, a bulk call being one operation
HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))+")


class AzureDpsOptions(CloudApiOptions):
    kind: Literal["azure-dps"] = "azure-dps"
    connection_string: str | None = option(
        "Service connection string", "The DPS's connection string of a shared access policy with enrollment "
        "read and write (HostName=….azure-devices-provisioning.net;SharedAccessKeyName=…;SharedAccessKey=…).",
        example="HostName=acme.azure-devices-provisioning.net;…", max_length=4000, secret=True, required=True)
    iot_hub: str | None = option(
        "IoT hub", "The linked hub the enrollments name (iotHubHostName); empty: DPS's allocation decides.",
        example="acme-eu.azure-devices.net", max_length=253)
    allocation: str | None = option(
        "Allocation policy", "How DPS assigns each device to a linked hub; empty: the service's own setting.",
        choices=("hashed", "static", "geolatency"))
    provisioning_status: str | None = option(
        "Provisioning status", "Whether enrolled devices may register at once (default enabled).",
        choices=("enabled", "disabled"))
    endpoint_url: str | None = option(
        "Endpoint URL", "Another https base URL for the requests (a private endpoint, a test server); the "
        "signature still names the connection string's HostName.", max_length=2000, input="url")


def validate(options: dict[str, str], given: Secret | None, settings: Settings, check: bool) -> Checked:
    from bindery.clouds.azure_dps_api import BadConnectionString, parse_connection_string

    secret = need_secret(given, "connection_string")
    try:
        connection = parse_connection_string(secret)
    except BadConnectionString as exc:
        raise FieldError("connection_string", str(exc)) from None
    out = {"host_name": connection.host, "policy_name": connection.policy,
           "provisioning_status": match(options.get("provisioning_status") or "enabled",
                                        re.compile("enabled|disabled"), "provisioning_status",
                                        "enabled or disabled")}
    if options.get("iot_hub"):
        out["iot_hub"] = match(options["iot_hub"].strip().lower(), HOST, "iot_hub",
                               "an IoT hub host name such as acme.azure-devices.net")
    if options.get("allocation"):
        out["allocation"] = match(options["allocation"].strip().lower(), re.compile("hashed|static|geolatency"),
                                  "allocation", "one of hashed, static, geolatency")
        if out["allocation"] == "static" and "iot_hub" not in out:
            raise FieldError("iot_hub", "is required with the static allocation policy", joined=False)
    if options.get("endpoint_url"):
        url = options["endpoint_url"].strip()
        if not url.startswith("https://"):
            raise FieldError("endpoint_url", f"{url[:200]!r} must be an https URL (the signature is a bearer "
                                             "credential)")
        out["endpoint_url"] = check_url(url, "endpoint_url", allow_private=settings.allow_private_targets,
                                        must_resolve=check)
    return Checked(out, secret)


def connect(target: Target) -> Connector:
    from bindery.clouds.azure_dps import AzureDpsConnector

    return AzureDpsConnector(target.secret or "", target.options, timeout=target.timeout)


SPEC = KindSpec(
    kind="azure-dps", title="Azure IoT Hub Device Provisioning Service", order=60,
    summary="Enrolls each device in a DPS (an X.509 individual enrollment named by its certificate's CN), "
            "which assigns it to one of the linked hubs when it first connects; bulk calls of up to 10.",
    options=AzureDpsOptions, validate=validate,
    quota=Quota(rate=OPERATIONS_PER_MINUTE / 60, counts="operation (a bulk call of up to 10, a read, a query page)",
                tokens=lambda _devices: 0.0,
                source="DPS: 1,000 operations a minute per unit; the connector paces each request"),
    connect=connect, removal=Removal(True), bulk_size=BULK_LIMIT, secret="connection_string",
    destination=("endpoint_url",),
    target_of=lambda s: s.get("host_name", ""),
    reconcile="the service's individual enrollments (an enrollments query, page by page)",
    docs="docs/clouds/azure-dps.md")
