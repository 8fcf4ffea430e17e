"""The interop protocol of the vendor's quickstart receivers (kinds aws, azure, other), as they implement it.

Request: ``POST <url>`` with ``Authorization: Bearer <ES256 JWT>`` (``aud`` = AWS account ID or Azure
subscription ID; kind other: HTTP Basic) and a JSON body, one of
  ``{"action": "info"}`` -> ``{"action": "info", "compatibilityVersion": 1}``
  ``{"action": "provision", "certs": [{"ref": str, "cert": base64(PEM)}, ...]}``
Answer to provision: a JSON array, one object per cert, matched by ``ref`` (order not relied on):
  ``{"ref": str, "status": "SUCCESS", "endpoint": str, "topic": str, "policyApplied": bool}`` — the
  device is registered; ``endpoint`` is where it connects, ``topic`` its MQTT topic, and
  ``policyApplied: false`` means the receiver's IoT policy was not attached (it does not exist): the
  device is registered but cannot connect, so Bindery records it as provisioned *with a warning*;
  ``{"ref": str, "status": "ERROR", "message": str}`` — this cert failed (a permanent failure).
A cert missing from the array is a permanent failure. Whole-request errors: 400 and 401 carry
``{"error": str}`` (permanent); 429 and 5xx are transient (``Retry-After`` honoured); API Gateway cuts a
request at 29 s (504), which is why chunks are sized to the target's time budget.
Provisioning is idempotent per certificate: the same cert again answers SUCCESS.
"""

from __future__ import annotations

import base64
import email.utils
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

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
from bindery.clouds.urls import check_url, refused_target

COMPATIBILITY_VERSION = 1


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
        if isinstance(body, dict) and body.get("error"):
            return str(body["error"])[:200]
    except ValueError:
        pass
    return response.reason_phrase or "no reason given"


class RequestCut(Transient):
    """The request took too long: it timed out, or a gateway cut it (504). The receiver may have done the
    work anyway; its devices are re-sent in smaller requests (receivers are idempotent)."""


START_SIZE = 5
BUDGET_SECONDS = 20.0  # under API Gateway's 29 s cut


@dataclass
class RequestSizer:
    """How many certificates one request carries, learned from the target (Little's law on one request):
    start small, grow while requests take under half the time budget, halve on a cut, never above
    ``maximum``. One per target URL and process, shared by the chunks in flight."""

    budget: float
    maximum: int
    size: int = START_SIZE
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def current(self) -> int:
        return max(1, min(self.size, self.maximum))

    def took(self, devices: int, seconds: float) -> None:
        fits = max(1, int(self.budget / 2 / max(seconds / devices, 1e-6)))
        with self.lock:
            if seconds < self.budget / 2:
                self.size = min(self.maximum, max(self.size + 1, min(self.size * 2, fits)))
            else:
                self.size = max(1, min(self.size, fits))

    def cut(self) -> None:
        with self.lock:
            self.size = max(1, self.current() // 2)


_sizers: dict[tuple[str, int, float], RequestSizer] = {}
_sizers_lock = threading.Lock()


def sizer_for(url: str, maximum: int, timeout: float) -> RequestSizer:
    """The target's sizer; its budget is 20 s, or two thirds of a shorter timeout."""
    budget = min(BUDGET_SECONDS, timeout * 2 / 3)
    with _sizers_lock:
        return _sizers.setdefault((url, maximum, budget), RequestSizer(budget=budget, maximum=maximum))


class InteropConnector:
    """One receiver URL; ``auth`` builds the Authorization header for each request. A chunk is sent in
    requests sized by the target's RequestSizer; ``request_sizes`` lists them, for the run's report."""

    def __init__(self, url: str, auth: Callable[[], str], *, timeout: float, allow_private: bool,
                 transport: httpx.BaseTransport | None = None, max_request: int = 100):
        self.url, self.auth, self.allow_private = url, auth, allow_private
        self.client = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)
        self.sizer = sizer_for(url, max_request, timeout)
        self.request_sizes: list[int] = []

    def pace(self, pacer: Pacer) -> None:
        """The run takes one token per chunk up front (the kind's quota counts requests)."""

    def close(self) -> None:
        self.client.close()

    def _post(self, body: dict[str, Any]) -> Any:
        from bindery.errors import BadInput

        try:
            check_url(self.url, "url", allow_private=self.allow_private, allow_http_loopback=True, must_resolve=False)
        except BadInput as exc:
            raise Permanent(refused_target(exc)) from None
        try:
            response = self.client.post(self.url, json=body, headers={"Authorization": self.auth()})
        except httpx.ReadTimeout as exc:
            raise RequestCut(f"timeout talking to {self.url} ({exc.__class__.__name__})") from None
        except httpx.TimeoutException as exc:
            raise Transient(f"timeout talking to {self.url} ({exc.__class__.__name__})") from None
        except httpx.TransportError as exc:
            raise Transient(f"connection to {self.url} failed ({exc.__class__.__name__})") from None
        if response.status_code == 429:
            raise Transient(f"throttled by the receiver (429): {_error_text(response)}", retry_after(response))
        if response.status_code == 504:
            raise RequestCut(f"the request was cut (504 from {self.url}): {_error_text(response)}")
        if response.status_code >= 500:
            raise Transient(f"receiver error {response.status_code}: {_error_text(response)}", retry_after(response))
        if response.status_code >= 400:
            raise Permanent(f"refused by the receiver ({response.status_code}): {_error_text(response)}")
        try:
            return response.json()
        except ValueError:
            raise Permanent("malformed response: not JSON (receiver does not speak the interop protocol)") from None

    def deprovision(self, devices: Sequence[ProvisionedDevice]) -> list[DeviceResult]:
        return _no_removal(devices)

    def inventory(self, devices: Sequence[DeviceKey]) -> dict[str, Holding] | None:
        """The interop protocol cannot be asked what a receiver holds."""
        return None

    def check(self) -> None:
        answer = self._post({"action": "info"})
        version = answer.get("compatibilityVersion") if isinstance(answer, dict) else None
        if version != COMPATIBILITY_VERSION:
            raise Permanent(f"receiver answered compatibilityVersion {version!r}, Bindery speaks "
                            f"{COMPATIBILITY_VERSION}")

    def provision(self, devices: Sequence[DeviceCert], confirmed: Confirmed | None = None) -> list[DeviceResult]:
        """The chunk in requests of the sizer's size. A cut request's devices are probed in smaller requests.
        A transient failure before any answer raises (the run retries the chunk); after some answers, the
        rest of the chunk is reported transient, so what was confirmed is recorded. Each request's answers
        go to ``confirmed`` before the next request is sent."""
        results: list[DeviceResult] = []
        pending = list(devices)
        cut_alone: RequestCut | None = None
        while pending:
            part = pending[:self.sizer.current()]
            started = time.monotonic()
            try:
                answered = self._request(part)
            except RequestCut as exc:
                self.sizer.cut()
                if len(part) > 1:
                    continue  # the same devices again, in smaller requests
                cut_alone = cut_alone or exc
                results.append(failed(part[0].device_id, exc))
            except Transient as exc:
                if not results:
                    raise
                return results + [failed(d.device_id, exc) for d in pending]
            else:
                self.sizer.took(len(part), time.monotonic() - started)
                self.request_sizes.append(len(part))
                results += answered
                if confirmed is not None:
                    confirmed(answered)
            pending = pending[len(part):]
        if cut_alone is not None and all(r.outcome is Outcome.FAILED for r in results):
            raise cut_alone
        return results

    def _request(self, devices: Sequence[DeviceCert]) -> list[DeviceResult]:
        certs = [{"ref": d.device_id, "cert": base64.b64encode(d.certificate_pem.encode()).decode()} for d in devices]
        answer = self._post({"action": "provision", "certs": certs})
        if not isinstance(answer, list) or not all(isinstance(a, dict) for a in answer):
            raise Permanent("malformed response: expected a JSON array of results")
        by_ref = {str(a.get("ref")): a for a in answer}
        results = []
        for device in devices:
            entry = by_ref.get(device.device_id)
            if entry is None:
                results.append(failed(device.device_id, Permanent("receiver gave no result for this device")))
            elif entry.get("status") == "SUCCESS":
                results.append(DeviceResult(device.device_id, Outcome.PROVISIONED, external_ref=str(entry.get("ref")),
                                            endpoint=_text(entry.get("endpoint")), topic=_text(entry.get("topic")),
                                            policy_applied=policy_applied(entry.get("policyApplied"))))
            else:
                message = str(entry.get("message") or "receiver reported an error")[:300]
                results.append(failed(device.device_id, Permanent(message)))
        return results


def _text(value: Any, limit: int = 512) -> str | None:
    return str(value)[:limit] if isinstance(value, str) and value else None


def policy_applied(value: Any) -> bool | None:
    """The vendor's receivers answer a boolean; older receivers (Bindery's own, once) a string."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _no_removal(devices: Sequence[ProvisionedDevice]) -> list[DeviceResult]:
    raise Permanent("the interop protocol has no removal: remove the devices in the Product Cloud, then run "
                    "deprovision with --forget to mark Bindery's records removed")


def bearer(token: Callable[[], str]) -> Callable[[], str]:
    return lambda: f"Bearer {token()}"


def basic(credentials: str) -> Callable[[], str]:
    encoded = base64.b64encode(credentials.encode("utf-8")).decode("ascii")
    return lambda: f"Basic {encoded}"


__all__ = ["ConnectorError", "InteropConnector", "basic", "bearer"]
