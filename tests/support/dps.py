"""A local HTTPS stand-in for the Azure IoT Hub Device Provisioning Service's service API
(api-version 2021-10-01), written from its REST reference: individual enrollments only.

- ``POST /enrollments`` runs a bulk operation (``{"enrollments": [...], "mode": "create"|"delete"|...}``,
  at most 10 items, else 400) and answers a BulkEnrollmentOperationResult with HTTP 200 whatever the
  items' fate: ``{"isSuccessful": bool, "errors": [{"registrationId", "errorCode", "errorStatus"}]}``;
  an id that exists already is 409201, a registration id DPS cannot take 400xxx.
- ``GET``/``DELETE /enrollments/{id}`` (404 = 404201), ``POST /enrollments/query`` paged by
  ``x-ms-max-item-count`` with an opaque ``x-ms-continuation``.
- Every request carries ``Authorization: SharedAccessSignature sr=&sig=&se=&skn=``, checked against the
  policy's key (401 = 401002). Enrollments keep the certificate's facts (``info``: sha256Thumbprint, …),
  never the PEM itself, as DPS answers them.
- The quota: 1,000 operations a minute per unit, every request one operation. DPS does not publish the
  window it counts in; this one counts any ``window`` seconds (10 by default: 166 operations) and answers
  429 (429001) with ``Retry-After`` above it, so a burst shows within seconds.
- ``faults`` are used up by the next requests: a status (with headers, a delay), or a dropped connection
  before or *after* the operation was carried out.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import re
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

API_VERSION = "2021-10-01"
HOST = "bindery-test.azure-devices-provisioning.net"
POLICY = "provisioningserviceowner"
KEY = base64.b64encode(b"bindery-dps-test-shared-access-key").decode()
BULK_LIMIT = 10
REGISTRATION_ID = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._:-]{0,126}[A-Za-z0-9])?")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass
class Fault:
    """``status`` answered instead of the operation, or ``drop``: "before" (the connection closes, the
    operation is not carried out) or "after" (carried out, then the answer is cut off)."""

    status: int = 503
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: str | None = None


@dataclass
class Dps:
    host: str = HOST
    key: str = KEY
    policy: str = POLICY
    per_minute: float = 1000.0
    window: float = 10.0
    latency: float = 0.0  # seconds before a request is handled
    answer_delay: float = 0.0  # seconds after it was handled, before the answer leaves
    enrollments: dict[str, dict[str, Any]] = field(default_factory=dict)  # by registration id, lower case
    faults: list[Fault | None] = field(default_factory=list)  # None: the next request is answered as usual
    calls: list[str] = field(default_factory=list)
    throttled: int = 0
    created_at: list[float] = field(default_factory=list)  # monotonic time of each enrollment created
    operations: deque[float] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def connection_string(self, key: str | None = None, policy: str | None = None) -> str:
        return (f"HostName={self.host};SharedAccessKeyName={policy or self.policy};"
                f"SharedAccessKey={key or self.key}")

    def _count(self, now: float) -> float | None:
        """Count one operation; None when within the quota, else the seconds until one is free again."""
        with self.lock:
            while self.operations and now - self.operations[0] >= self.window:
                self.operations.popleft()
            if len(self.operations) >= self.per_minute * self.window / 60:
                self.throttled += 1
                return self.window - (now - self.operations[0])
            self.operations.append(now)
            return None

    def enroll(self, body: dict[str, Any], etag: str = "") -> tuple[dict[str, Any] | None, tuple[int, str] | None]:
        """An enrollment record from a request's IndividualEnrollment, or the per-item error."""
        registration_id = str(body.get("registrationId") or "")
        if not REGISTRATION_ID.fullmatch(registration_id):
            return None, (400203, f"Registration id '{registration_id[:140]}' is invalid")
        attestation = body.get("attestation") or {}
        pem = (((attestation.get("x509") or {}).get("clientCertificates") or {}).get("primary") or {}).get(
            "certificate")
        if attestation.get("type") != "x509" or not isinstance(pem, str):
            return None, (400004, "Only X.509 client certificate attestation is served by this stand-in")
        try:
            cert = x509.load_pem_x509_certificate(pem.encode())
        except ValueError:
            return None, (400004, "The certificate is not a valid PEM X.509 certificate")
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if not names or str(names[0].value).lower() != registration_id.lower():
            return None, (400208, "The registration id must match the certificate's subject common name")
        status = body.get("provisioningStatus", "enabled")
        if status not in ("enabled", "disabled"):
            return None, (400004, f"Invalid provisioningStatus '{status}'")
        der = cert.public_bytes(serialization.Encoding.DER)
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        record = {
            "registrationId": registration_id, "provisioningStatus": status,
            "attestation": {"type": "x509", "x509": {"clientCertificates": {"primary": {"info": {
                "subjectName": cert.subject.rfc4514_string(), "issuerName": cert.issuer.rfc4514_string(),
                "sha1Thumbprint": hashlib.sha1(der).hexdigest().upper(),
                "sha256Thumbprint": hashlib.sha256(der).hexdigest().upper(),
                "notBeforeUtc": cert.not_valid_before_utc.isoformat(),
                "notAfterUtc": cert.not_valid_after_utc.isoformat(),
                "serialNumber": format(cert.serial_number, "X"), "version": cert.version.value + 1}}}}},
            "etag": etag or base64.b64encode(hashlib.sha256(der + registration_id.encode()).digest()[:9]).decode(),
            "createdDateTimeUtc": now, "lastUpdatedDateTimeUtc": now,
            **{k: body[k] for k in ("iotHubHostName", "allocationPolicy", "iotHubs", "deviceId") if body.get(k)},
        }
        return record, None

    def bulk(self, operation: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        items, mode = operation.get("enrollments"), operation.get("mode")
        if not isinstance(items, list) or mode not in ("create", "update", "updateIfMatchETag", "delete"):
            return 400, _error(400004, "The bulk operation needs 'enrollments' and a 'mode'")
        if len(items) > BULK_LIMIT:
            return 400, _error(400004, f"A bulk operation takes at most {BULK_LIMIT} enrollments, got {len(items)}")
        errors = []
        for item in items:
            registration_id = str((item or {}).get("registrationId") or "")
            key = registration_id.lower()
            if mode == "delete":
                if self.enrollments.pop(key, None) is None:
                    errors.append(_item(registration_id, 404201, "Enrollment not found"))
                continue
            if mode == "create" and key in self.enrollments:
                errors.append(_item(registration_id, 409201, f"Enrollment with id '{registration_id}' already "
                                                             "exists"))
                continue
            record, error = self.enroll(item or {})
            if error is not None:
                errors.append(_item(registration_id, *error))
                continue
            assert record is not None
            self.enrollments[key] = record
            self.created_at.append(time.monotonic())
        return 200, {"isSuccessful": not errors, "errors": errors}


def _error(code: int, message: str) -> dict[str, Any]:
    return {"errorCode": code, "trackingId": "bindery-stand-in", "message": message,
            "timestampUtc": datetime.now(UTC).isoformat().replace("+00:00", "Z")}


def _item(registration_id: str, code: int, status: str) -> dict[str, Any]:
    return {"registrationId": registration_id, "errorCode": code, "errorStatus": status}


def signature_ok(header: str, dps: Dps) -> bool:
    """The SAS token names this DPS's host, this policy, has not expired, and is signed with its key."""
    if not header.startswith("SharedAccessSignature "):
        return False
    try:
        fields = dict(part.split("=", 1) for part in header[len("SharedAccessSignature "):].split("&"))
        expiry = int(fields.get("se", "0"))
    except ValueError:
        return False
    if (fields.get("sr") != urllib.parse.quote_plus(dps.host.lower()) or fields.get("skn") != dps.policy
            or expiry < time.time()):
        return False
    message = f"{fields['sr']}\n{fields['se']}".encode()
    digest = base64.b64encode(hmac.new(base64.b64decode(dps.key), message, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(urllib.parse.unquote(fields.get("sig", "")), digest)


class DpsApp:
    """The stand-in as a plain ASGI app (so a fault can cut a connection off mid-answer)."""

    def __init__(self, dps: Dps):
        self.dps = dps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        dps, method, path = self.dps, scope["method"], scope["path"]
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        dps.calls.append(f"{method} {path}")
        fault = dps.faults.pop(0) if dps.faults else None
        if dps.latency or (fault and fault.delay):
            await asyncio.sleep(dps.latency + (fault.delay if fault else 0.0))
        if fault is not None and fault.drop == "before":
            return await _cut(send)
        if fault is not None and fault.drop is None:
            return await _answer(send, fault.status, fault.body or _error(fault.status * 1000 + 1, "injected"),
                                 fault.headers)
        status, answer, extra = self.handle(method, path, scope.get("query_string", b"").decode(), headers, body)
        if dps.answer_delay:
            await asyncio.sleep(dps.answer_delay)
        if fault is not None and fault.drop == "after":
            return await _cut(send)
        await _answer(send, status, answer, extra)

    def handle(self, method: str, path: str, query: str, headers: dict[str, str],
               body: bytes) -> tuple[int, Any, dict[str, str]]:
        dps = self.dps
        if urllib.parse.parse_qs(query).get("api-version") != [API_VERSION]:
            return 400, _error(400001, "Unsupported or missing api-version"), {}
        if not signature_ok(headers.get("authorization", ""), dps):
            return 401, _error(401002, "Authorization failed for the request"), {}
        wait = dps._count(time.monotonic())
        if wait is not None:
            return 429, _error(429001, "Operations are being throttled"), {"Retry-After": str(max(1, math.ceil(wait)))}
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            return 400, _error(400004, "The request body is not JSON"), {}
        with dps.lock:
            if method == "POST" and path == "/enrollments":
                status, answer = dps.bulk(payload if isinstance(payload, dict) else {})
                return status, answer, {}
            if method == "POST" and path == "/enrollments/query":
                return self.query(headers)
            found = re.fullmatch(r"/enrollments/([^/]+)", path)
            if found is not None:
                key = urllib.parse.unquote(found.group(1)).lower()
                if method == "GET":
                    record = dps.enrollments.get(key)
                    return (200, record, {}) if record else (404, _error(404201, "Enrollment not found"), {})
                if method == "DELETE":
                    gone = dps.enrollments.pop(key, None)
                    return (204, None, {}) if gone else (404, _error(404201, "Enrollment not found"), {})
        return 404, _error(404001, f"No such resource: {method} {path}"), {}

    def query(self, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        size = max(1, min(int(headers.get("x-ms-max-item-count") or 100), 1000))
        token = headers.get("x-ms-continuation") or ""
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode() or 0) if token else 0
        except ValueError:
            return 400, _error(400004, "Invalid continuation token"), {}
        ordered = sorted(self.dps.enrollments)
        page = [self.dps.enrollments[k] for k in ordered[start:start + size]]
        extra = {"x-ms-item-type": "Enrollment", "x-ms-max-item-count": str(size)}
        if start + size < len(ordered):
            extra["x-ms-continuation"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        return 200, page, extra


async def _answer(send: Send, status: int, body: Any, headers: dict[str, str]) -> None:
    content = b"" if body is None else json.dumps(body).encode()
    raw = [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(content)).encode()),
           *((k.encode(), v.encode()) for k, v in headers.items())]
    if status >= 400 and isinstance(body, dict):
        raw.append((b"x-ms-error-code", str(body.get("errorCode", "")).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": content})


async def _cut(send: Send) -> None:
    """Start an answer that promises a body and stop: the server closes the connection half-way."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")]})
    await send({"type": "http.response.body", "body": b'{"isSucc', "more_body": True})
    raise ConnectionResetError("dropped by the DPS stand-in")


@contextmanager
def running_dps(folder: Path, **options: Any) -> Iterator[tuple[Dps, str]]:
    """The stand-in over HTTPS on loopback; yields it and its base URL (the ``--endpoint-url``). The
    caller trusts ``folder / "ca.pem"`` (SSL_CERT_FILE or REQUESTS_CA_BUNDLE)."""
    from tests.support.servers import serve
    from tests.support.tls import make_tls

    tls = make_tls(folder)
    dps = Dps(**options)
    with serve(DpsApp(dps), ssl={"cert": str(tls.cert), "key": str(tls.key)}) as url:
        yield dps, url
