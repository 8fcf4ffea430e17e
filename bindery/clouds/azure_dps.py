"""Azure IoT Hub Device Provisioning Service, individual enrollments over its service API (kind azure-dps).

One X.509 individual enrollment per device: the registration id is the certificate's subject CN (what DPS
matches a connecting device against), the PEM its primary client certificate. Writes are bulk operations
of at most 10 (``POST /enrollments``; per-item errors come back with HTTP 200); an id that exists already
(409201) is read back: the same certificate (SHA-256 thumbprint) is success, another is a permanent
conflict and is never overwritten. Every request is one DPS operation and takes one slot of the target's
pace first (1,000 operations a minute per unit by default); 429 is retried in place after its Retry-After
and slows the pace. No SDK: the Python ones are a 2018 client and a 2023 beta.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import httpx
from cryptography import x509

from bindery.clouds.azure_dps_api import DpsApi, parse_connection_string
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
from bindery.crypto.certs import common_name

BULK_LIMIT = 10
QUERY_PAGE = 100
ALREADY_EXISTS, NOT_FOUND = 409201, 404
OPERATIONS_PER_MINUTE = 1000.0
IN_FLIGHT = 10  # bulk calls of a chunk at once: at 1,000 a minute, 4 chunks cover round trips of up to 2 s
REGISTRATION_ID = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._:-]{0,126}[A-Za-z0-9])?")
ALLOCATIONS = {"hashed": "hashed", "static": "static", "geolatency": "geoLatency"}



def registration_id(certificate_pem: str) -> str:
    """The certificate's subject CN, which must be a registration id DPS can take; Permanent otherwise."""
    try:
        cn = common_name(x509.load_pem_x509_certificate(certificate_pem.encode()).subject)
    except ValueError:
        raise Permanent("the certificate cannot be read for its subject CN") from None
    if cn is None:
        raise Permanent("the certificate has no subject CN, which DPS needs as the registration id")
    if not REGISTRATION_ID.fullmatch(cn):
        shown = cn if len(cn) <= 40 else cn[:37] + "..."
        raise Permanent(f"subject CN {shown!r} cannot be a DPS registration id (1-128 letters, digits, "
                        "- . _ :, not starting or ending with - . _ :)")
    return cn


def enrollment(registration: str, certificate_pem: str, options: dict[str, str]) -> dict[str, Any]:
    """The IndividualEnrollment of one device with X.509 attestation."""
    body: dict[str, Any] = {
        "registrationId": registration,
        "attestation": {"type": "x509", "x509": {"clientCertificates": {"primary": {"certificate": certificate_pem}}}},
        "provisioningStatus": options.get("provisioning_status") or "enabled",
    }
    if options.get("iot_hub"):
        body["iotHubHostName"] = options["iot_hub"]
    if options.get("allocation"):
        body["allocationPolicy"] = ALLOCATIONS[options["allocation"]]
    return body


def thumbprint_of(record: Any) -> str | None:
    """The SHA-256 thumbprint DPS reports of an enrollment's primary client certificate, lower-case hex."""
    try:
        value = record["attestation"]["x509"]["clientCertificates"]["primary"]["info"]["sha256Thumbprint"]
    except (KeyError, TypeError):
        return None
    return str(value).replace(":", "").lower() if value else None


def groups(devices: Sequence[tuple[str, DeviceCert]]) -> Iterator[list[tuple[str, DeviceCert]]]:
    """Bulk calls of at most 10, never the same registration id twice in one call (the second of two
    devices sharing a CN goes to a later call, whose 409201 read back reports the conflict)."""
    pending = list(devices)
    while pending:
        group: list[tuple[str, DeviceCert]] = []
        seen: set[str] = set()
        rest = []
        for item in pending:
            if len(group) < BULK_LIMIT and item[0].lower() not in seen:
                group.append(item)
                seen.add(item[0].lower())
            else:
                rest.append(item)
        yield group
        pending = rest


def waves(calls: list[list[tuple[str, DeviceCert]]]) -> Iterator[list[list[tuple[str, DeviceCert]]]]:
    """The calls that may go side by side: first every call of first occurrences, then each call carrying a
    registration id seen before, one at a time, so the first device of a CN always wins, run after run."""
    seen: set[str] = set()
    first: list[list[tuple[str, DeviceCert]]] = []
    later: list[list[tuple[str, DeviceCert]]] = []
    for call in calls:
        ids = {r.lower() for r, _ in call}
        (later if ids & seen else first).append(call)
        seen |= ids
    if first:
        yield first
    for call in later:
        yield [call]


class AzureDpsConnector:
    """One DPS; ``options`` are the Cloud API's settings (``endpoint_url``, ``iot_hub``, ``allocation``,
    ``provisioning_status``). ``pacer`` is taken before every request."""

    def __init__(self, connection_string: str, options: dict[str, str], *, timeout: float,
                 pacer: Pacer | None = None, transport: httpx.BaseTransport | None = None):
        self.options = options
        self.api = DpsApi(parse_connection_string(connection_string), options.get("endpoint_url"), timeout=timeout,
                          transport=transport)
        self.api.pacer = pacer
        self.connection = self.api.connection
        self.request_sizes: list[int] = []  # DPS takes fixed bulk calls: nothing to report

    def pace(self, pacer: Pacer) -> None:
        self.api.pacer = pacer

    def close(self) -> None:
        self.api.close()
    def check(self) -> None:
        """One query of a single enrollment: authorized, changes nothing."""
        response = self.api.call("QueryEnrollments", "POST", "/enrollments/query",
                              body={"query": "SELECT * FROM enrollments"}, headers={"x-ms-max-item-count": "1"})
        if response.status_code == 404 or not isinstance(self.api.json("QueryEnrollments", response), list):
            raise Permanent(f"QueryEnrollments: {self.api.base} does not answer as a DPS service API")

    def provision(self, devices: Sequence[DeviceCert], confirmed: Confirmed | None = None) -> list[DeviceResult]:
        """Bulk creates of at most 10, up to IN_FLIGHT of them at once (each waits for its slot of the pace:
        at DPS's latency one call at a time could not keep up with it), each call's results handed to
        ``confirmed`` as DPS answers. When no call was answered the first failure raises (the run retries
        the chunk); otherwise the devices of the calls that failed get their call's error."""
        results: dict[str, DeviceResult] = {}
        named: list[tuple[str, DeviceCert]] = []
        for device in devices:
            try:
                named.append((registration_id(device.certificate_pem), device))
            except Permanent as exc:
                results[device.device_id] = failed(device.device_id, exc)
        pending = list(groups(named))
        errors: list[ConnectorError] = []
        for wave in waves(pending):
            with ThreadPoolExecutor(max_workers=min(IN_FLIGHT, len(wave)), thread_name_prefix="dps") as pool:
                calls = {pool.submit(self._create, group): group for group in wave}
                for call in as_completed(calls):
                    try:
                        created = call.result()
                    except ConnectorError as exc:
                        errors.append(exc)
                        results.update((d.device_id, failed(d.device_id, exc)) for _, d in calls[call])
                        continue
                    results.update(created)
                    if confirmed is not None:
                        confirmed(list(created.values()))
        if errors and len(errors) == len(pending):
            raise errors[0]
        return [results[d.device_id] for d in devices]

    def _create(self, group: list[tuple[str, DeviceCert]]) -> dict[str, DeviceResult]:
        body = {"mode": "create", "enrollments": [enrollment(r, d.certificate_pem, self.options) for r, d in group]}
        answer = self.api.json("BulkEnrollment", self.api.call("BulkEnrollment", "POST", "/enrollments", body=body))
        if not isinstance(answer, dict) or "isSuccessful" not in answer:
            raise Permanent("BulkEnrollment: malformed response (no isSuccessful)")
        errors = {str(e.get("registrationId", "")).lower(): e
                  for e in answer.get("errors") or [] if isinstance(e, dict)}
        out = {}
        for registration, device in group:
            error = errors.get(registration.lower())
            if error is None:
                out[device.device_id] = self._done(device, registration, Outcome.PROVISIONED)
            elif _code(error) == ALREADY_EXISTS:
                out[device.device_id] = self._existing(device, registration)
            else:
                out[device.device_id] = failed(device.device_id, _item_error(error))
        return out

    def _done(self, device: DeviceCert, registration: str, outcome: Outcome) -> DeviceResult:
        return DeviceResult(device.device_id, outcome, external_ref=registration,
                            endpoint=self.options.get("iot_hub") or self.connection.host)

    def _get(self, registration: str) -> dict[str, Any] | None:
        path = f"/enrollments/{urllib.parse.quote(registration, safe='')}"
        response = self.api.call("GetEnrollment", "GET", path)
        if response.status_code == 404:
            return None
        record = self.api.json("GetEnrollment", response)
        if not isinstance(record, dict):
            raise Permanent("GetEnrollment: malformed response")
        return record

    def _existing(self, device: DeviceCert, registration: str) -> DeviceResult:
        try:
            record = self._get(registration)
        except ConnectorError as exc:
            return failed(device.device_id, exc)
        if record is None:  # deleted between the two calls: the chunk's retry creates it
            return failed(device.device_id, Transient("BulkEnrollment: 409201, then the enrollment was gone"))
        if thumbprint_of(record) == device.fingerprint_sha256.lower():
            return self._done(device, registration, Outcome.ALREADY_PRESENT)
        return failed(device.device_id, Permanent(
            f"enrollment {registration} exists in DPS with another certificate (SHA-256 "
            f"{(thumbprint_of(record) or 'unknown')[:16]}...); not overwritten"))

    def deprovision(self, devices: Sequence[ProvisionedDevice]) -> list[DeviceResult]:
        """Each enrollment read, then those holding the device's certificate deleted in bulk; one already
        gone counts as removed; one holding another certificate is not deleted, and is reported."""
        results: dict[str, DeviceResult] = {}
        doomed: list[tuple[str, ProvisionedDevice, dict[str, Any]]] = []
        for device in devices:
            if not device.external_ref:
                results[device.device_id] = failed(device.device_id, Permanent("no registration id recorded"))
                continue
            try:
                record = self._get(device.external_ref)
            except ConnectorError as exc:
                results[device.device_id] = failed(device.device_id, exc)
                continue
            if record is None:
                results[device.device_id] = DeviceResult(device.device_id, Outcome.PROVISIONED)
            elif thumbprint_of(record) != device.fingerprint_sha256.lower():
                results[device.device_id] = failed(device.device_id, Permanent(
                    f"enrollment {device.external_ref} holds another certificate: not deleted"))
            else:
                doomed.append((device.external_ref, device, record))
        for start in range(0, len(doomed), BULK_LIMIT):
            group = doomed[start:start + BULK_LIMIT]
            try:
                answer = self.api.json("BulkEnrollment", self.api.call(
                    "BulkEnrollment", "POST", "/enrollments", body={"mode": "delete",
                                                                    "enrollments": [r for _, _, r in group]}))
            except ConnectorError as exc:
                results.update((d.device_id, failed(d.device_id, exc)) for _, d, _ in group)
                continue
            errors = {str(e.get("registrationId", "")).lower(): e for e in
                      (answer.get("errors") or [] if isinstance(answer, dict) else []) if isinstance(e, dict)}
            for registration, device, _record in group:
                error = errors.get(registration.lower())
                if error is None or _code(error) // 1000 == NOT_FOUND:
                    results[device.device_id] = DeviceResult(device.device_id, Outcome.PROVISIONED)
                else:
                    results[device.device_id] = failed(device.device_id, _item_error(error))
        return [results[d.device_id] for d in devices]

    def inventory(self, devices: Sequence[DeviceKey]) -> dict[str, Holding] | None:
        """The service's enrollments, page by page; a device is held when an enrollment has its
        registration id (its CN). Disabled counts as drift only where the Cloud API enrolls enabled."""
        wanted = {d.subject_cn.lower(): d for d in devices if d.subject_cn}
        enrolls_enabled = (self.options.get("provisioning_status") or "enabled") == "enabled"
        held: dict[str, Holding] = {}
        token: str | None = None
        while True:
            headers = {"x-ms-max-item-count": str(QUERY_PAGE), **({"x-ms-continuation": token} if token else {})}
            response = self.api.call("QueryEnrollments", "POST", "/enrollments/query",
                                  body={"query": "SELECT * FROM enrollments"}, headers=headers)
            page = self.api.json("QueryEnrollments", response)
            if not isinstance(page, list):
                raise Permanent("QueryEnrollments: malformed response (expected a list)")
            for record in page:
                registration = str(record.get("registrationId", "")) if isinstance(record, dict) else ""
                device = wanted.get(registration.lower())
                if device is not None:
                    enabled = record.get("provisioningStatus", "enabled") == "enabled" or not enrolls_enabled
                    held[device.device_id] = Holding(device.device_id, thumbprint_of(record), enabled, registration)
            token = response.headers.get("x-ms-continuation") or None
            if not token:
                return held


def _code(error: dict[str, Any]) -> int:
    try:
        return int(error.get("errorCode") or 0)
    except (TypeError, ValueError):
        return 0


def _item_error(error: dict[str, Any]) -> ConnectorError:
    code = _code(error)
    message = f"BulkEnrollment: {code}: {str(error.get('errorStatus') or '')[:200]}"
    return Transient(message) if code // 1000 in (429, 500, 503) else Permanent(message)
