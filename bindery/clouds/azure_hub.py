"""Azure IoT Hub, directly through the azure-iot-hub SDK (kind azure-iot-hub).

Devices are created in bulk calls of at most 100 with self-signed X.509 authentication: the SHA-256
of the DER in upper-case hex as primary and secondary thumbprint. A device that already exists with
the same thumbprint is success; with another thumbprint it is a permanent conflict. The SDK never
retries POST and reports bulk errors in its result instead of raising; both are handled here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from msrest.exceptions import ClientRequestError, DeserializationError, HttpOperationError

from bindery.clouds.base import (
    Confirmed,
    ConnectorError,
    DeviceCert,
    DeviceKey,
    DeviceResult,
    Holding,
    Outcome,
    Pacer,
    Permanent,
    ProvisionedDevice,
    Transient,
    failed,
)
from bindery.clouds.kinds.azure_iot_hub import BULK_LIMIT, check_host, parse_connection_string
from bindery.clouds.urls import refused_target

ALREADY_EXISTS = {"DeviceAlreadyExists", "409001"}
TRANSIENT_CODES = ("Throttl", "ServerBusy", "InternalServerError", "ServiceUnavailable", "429", "500", "503")
T = TypeVar("T")


def thumbprint(device: DeviceCert) -> str:
    return device.fingerprint_sha256.upper()


def map_error(exc: Exception, call: str) -> ConnectorError:
    if isinstance(exc, HttpOperationError):
        response = exc.response
        status = getattr(response, "status_code", 0) or 0
        retry_after = None
        if response is not None and response.headers.get("Retry-After"):
            try:
                retry_after = max(0.0, float(response.headers["Retry-After"]))
            except ValueError:
                retry_after = None
        message = f"{call}: HTTP {status}"
        if status == 429 or status >= 500:
            return Transient(message, retry_after)
        return Permanent(f"{message} (refused: check the connection string's policy and the hub)")
    if isinstance(exc, ClientRequestError):
        return Transient(f"{call}: connection failed or timed out ({exc.__class__.__name__})")
    if isinstance(exc, DeserializationError):
        return Permanent(f"{call}: malformed response from the hub")
    raise exc


class AzureHubConnector:
    def __init__(self, connection_string: str, *, timeout: float, registry: Any = None, allow_private: bool = False):
        self.host = parse_connection_string(connection_string)["HostName"]
        self.allow_private = allow_private
        self._connection_string = connection_string
        self.timeout = timeout
        self._registry = registry
        self.request_sizes: list[int] = []

    def pace(self, pacer: Pacer) -> None:
        """The run takes one token per device up front (the hub's quota counts registry operations)."""

    @property
    def registry(self) -> Any:
        if self._registry is None:
            from azure.iot.hub import IoTHubRegistryManager

            from bindery.errors import BadInput

            try:  # again before any call: the stored HostName may now resolve elsewhere, the setting changed
                check_host(self.host, allow_private=self.allow_private, must_resolve=False)
            except BadInput as exc:
                raise Permanent(refused_target(exc)) from None
            registry = IoTHubRegistryManager.from_connection_string(self._connection_string)
            registry.protocol.config.connection.timeout = self.timeout
            registry.protocol.config.retry_policy.retries = 0  # msrest retries GETs itself; our policy decides
            self._registry = registry
        return self._registry

    def _call(self, call: str, action: Callable[[], T]) -> T:
        try:
            return action()
        except (HttpOperationError, ClientRequestError, DeserializationError) as exc:
            raise map_error(exc, call) from None

    def close(self) -> None:
        if self._registry is not None:
            self._registry.protocol.close()

    def check(self) -> None:
        self._call("GetDeviceRegistryStatistics", self.registry.get_device_registry_statistics)

    def provision(self, devices: Sequence[DeviceCert], confirmed: Confirmed | None = None) -> list[DeviceResult]:
        results: list[DeviceResult] = []
        for start in range(0, len(devices), BULK_LIMIT):
            answered = self._bulk(devices[start:start + BULK_LIMIT])
            results += answered
            if confirmed is not None:
                confirmed(answered)
        return results

    def _bulk(self, devices: Sequence[DeviceCert]) -> list[DeviceResult]:
        from azure.iot.hub.protocol.models import AuthenticationMechanism, ExportImportDevice, X509Thumbprint

        identities = [ExportImportDevice(
            id=d.device_id, import_mode="create", status="enabled",
            authentication=AuthenticationMechanism(type="selfSigned", x509_thumbprint=X509Thumbprint(
                primary_thumbprint=thumbprint(d), secondary_thumbprint=thumbprint(d))))
            for d in devices]
        outcome = self._call("BulkCreateDevices", lambda: self.registry.bulk_create_or_update_devices(identities))
        if outcome is None:
            raise Permanent("BulkCreateDevices: malformed response from the hub")
        errors = {e.device_id: e for e in (outcome.errors or [])}
        return [self._result(d, errors.get(d.device_id)) for d in devices]

    def _result(self, device: DeviceCert, error: Any) -> DeviceResult:
        if error is None:
            return DeviceResult(device.device_id, Outcome.PROVISIONED, external_ref=device.device_id,
                                endpoint=self.host)
        code = str(error.error_code or "")
        if code in ALREADY_EXISTS:
            return self._existing(device)
        message = f"BulkCreateDevices: {code}: {str(error.error_status or '')[:200]}"
        kind = Transient if any(t in code for t in TRANSIENT_CODES) else Permanent
        return failed(device.device_id, kind(message))

    def _existing(self, device: DeviceCert) -> DeviceResult:
        try:
            existing = self._call("GetDevice", lambda: self.registry.get_device(device.device_id))
        except ConnectorError as exc:
            return failed(device.device_id, exc)
        prints = getattr(getattr(existing.authentication, "x509_thumbprint", None), "primary_thumbprint", None)
        if (prints or "").upper() == thumbprint(device):
            return DeviceResult(device.device_id, Outcome.ALREADY_PRESENT, external_ref=device.device_id,
                                endpoint=self.host)
        return failed(device.device_id, Permanent("device exists in the hub with another certificate thumbprint"))

    def deprovision(self, devices: Sequence[ProvisionedDevice]) -> list[DeviceResult]:
        """Delete the devices; one that is already gone counts as removed."""
        results = []
        for device in devices:
            try:
                self.registry.delete_device(device.device_id)
            except HttpOperationError as exc:
                if getattr(exc.response, "status_code", 0) != 404:
                    results.append(failed(device.device_id, map_error(exc, "DeleteDevice")))
                    continue
            except (ClientRequestError, DeserializationError) as exc:
                results.append(failed(device.device_id, map_error(exc, "DeleteDevice")))
                continue
            results.append(DeviceResult(device.device_id, Outcome.PROVISIONED, external_ref=device.device_id))
        return results

    def inventory(self, devices: Sequence[DeviceKey]) -> dict[str, Holding] | None:
        """The registry read with the devices query, page by page (continuation tokens)."""
        from azure.iot.hub.protocol.models import QuerySpecification

        wanted = {d.device_id for d in devices}
        held: dict[str, Holding] = {}
        token: str | None = None

        def page_after(after: str | None) -> Any:
            return self.registry.query_iot_hub(QuerySpecification(query="SELECT * FROM devices"), after, 1000)

        while True:
            page = self._call("QueryIotHub", partial(page_after, token))
            for twin in page.items or []:
                device_id = getattr(twin, "device_id", None)
                if device_id in wanted:
                    prints = getattr(twin, "x509_thumbprint", None)
                    primary = getattr(prints, "primary_thumbprint", None)
                    held[device_id] = Holding(device_id, primary.lower() if primary else None,
                                              getattr(twin, "status", "enabled") == "enabled", device_id)
            token = page.continuation_token
            if not token:
                return held
