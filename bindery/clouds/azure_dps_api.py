"""The DPS service API over httpx, as the azure-dps connector uses it: the connection string, the
SharedAccessSignature, TLS trust, one client per DPS and process, and one paced request with DPS's
answers mapped to Bindery's errors (429 waited out in place after its Retry-After, slowing the pace)."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
import random
import re
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import httpx

from bindery.clouds.base import Pacer, Permanent, Transient

API_VERSION = "2021-10-01"
TOKEN_SECONDS = 3600
THROTTLED_ATTEMPTS = 5


@dataclass(frozen=True)
class DpsConnection:
    host: str
    policy: str
    key: bytes

    def __repr__(self) -> str:  # the key never shows in a traceback or a log line
        return f"DpsConnection(host={self.host!r}, policy={self.policy!r})"


class BadConnectionString(ValueError):
    """The connection string cannot be a DPS service connection string; the message never quotes the key."""


HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))+")


def parse_connection_string(text: str) -> DpsConnection:
    """``HostName=<name>.azure-devices-provisioning.net;SharedAccessKeyName=<policy>;SharedAccessKey=<base64>``."""
    parts = dict(part.strip().split("=", 1) for part in text.strip().split(";") if "=" in part)
    missing = [k for k in ("HostName", "SharedAccessKeyName", "SharedAccessKey") if not parts.get(k)]
    if missing:
        raise BadConnectionString(f"missing {', '.join(missing)} (expected a DPS service connection string: "
                                  "HostName=…;SharedAccessKeyName=…;SharedAccessKey=…)")
    if "DeviceId" in parts or "SharedAccessSignature" in parts:
        raise BadConnectionString("this is a device's connection string; give one of the DPS's shared access "
                                  "policies")
    host = parts["HostName"].strip().lower()
    if not HOST_NAME.fullmatch(host):
        raise BadConnectionString(f"HostName {host[:80]!r} is not a host name")
    if host.endswith(".azure-devices.net"):
        raise BadConnectionString(f"HostName {host} is an IoT Hub, not a Device Provisioning Service (its "
                                  "connection string is under the DPS's Shared access policies)")
    try:
        key = base64.b64decode(parts["SharedAccessKey"].strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise BadConnectionString("SharedAccessKey is not base64")
    return DpsConnection(host, parts["SharedAccessKeyName"].strip(), key)


def sas_token(connection: DpsConnection, expiry: int) -> str:
    """``SharedAccessSignature sr=<host>&sig=<HMAC-SHA256 of "sr\\nexpiry">&se=<expiry>&skn=<policy>``."""
    resource = urllib.parse.quote_plus(connection.host)
    digest = hmac.new(connection.key, f"{resource}\n{expiry}".encode(), hashlib.sha256).digest()
    signature = urllib.parse.quote_plus(base64.b64encode(digest).decode())
    policy = urllib.parse.quote_plus(connection.policy)
    return f"SharedAccessSignature sr={resource}&sig={signature}&se={expiry}&skn={policy}"



def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _error_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and (body.get("errorCode") or body.get("message")):
        return f"{body.get('errorCode', '')} {str(body.get('message') or '')[:200]}".strip()
    return response.reason_phrase or "no reason given"


def bundles() -> tuple[str, ...]:
    """The CA bundles SSL_CERT_FILE and REQUESTS_CA_BUNDLE name (a private CA, a local stand-in): both are
    read, as either one is how operators point Python tools at their CA."""
    from bindery.settings import get_settings

    settings = get_settings()
    found = (settings.ssl_cert_file, settings.requests_ca_bundle)
    return tuple(dict.fromkeys(b for b in found if b and os.path.isfile(b)))


@functools.cache
def trust(files: tuple[str, ...]) -> ssl.SSLContext:
    """The system's trust plus ``files`` (made once per process: loading a bundle takes tens of ms)."""
    context = ssl.create_default_context()
    for bundle in files:
        context.load_verify_locations(cafile=bundle)
    return context


_clients: dict[tuple[str, float, tuple[str, ...]], httpx.Client] = {}
_clients_lock = threading.Lock()


def client_for(base: str, timeout: float) -> httpx.Client:
    """One client per DPS and process, shared by the chunks in flight (httpx clients are thread-safe): its
    connections stay open from chunk to chunk instead of a TLS handshake per chunk."""
    key = (base, timeout, bundles())
    with _clients_lock:
        if key not in _clients:
            _clients[key] = httpx.Client(timeout=timeout, verify=trust(key[2]), follow_redirects=False,
                                         limits=httpx.Limits(max_connections=64, max_keepalive_connections=32))
        return _clients[key]




class DpsApi:
    """One DPS's service API: ``call`` is one operation, at the pace when ``pacer`` is set."""

    def __init__(self, connection: DpsConnection, endpoint_url: str | None, *, timeout: float,
                 transport: httpx.BaseTransport | None = None):
        self.connection = connection
        self.base = (endpoint_url or f"https://{connection.host}").rstrip("/")
        self.pacer: Pacer | None = None
        self._own = transport is not None
        if transport is not None:
            self.client = httpx.Client(timeout=timeout, verify=trust(bundles()), transport=transport,
                                       follow_redirects=False)
        else:
            self.client = client_for(self.base, timeout)
        self._token: tuple[float, str] = (0.0, "")

    def close(self) -> None:
        """The shared client stays open for the next chunk; only one made for a given transport closes."""
        if self._own:
            self.client.close()

    def _authorization(self) -> str:
        now = time.time()
        if self._token[0] - now < 300:
            expiry = int(now) + TOKEN_SECONDS
            self._token = (expiry, sas_token(self.connection, expiry))
        return self._token[1]

    def call(self, call: str, method: str, path: str, *, body: Any = None,
              headers: dict[str, str] | None = None) -> httpx.Response:
        """One operation at the pace; throttling is waited out in place (Retry-After) a few times."""
        for attempt in range(THROTTLED_ATTEMPTS):
            if self.pacer is not None:
                self.pacer.acquire(1.0)
            try:
                response = self.client.request(method, f"{self.base}{path}", params={"api-version": API_VERSION},
                                               json=body, headers={"Authorization": self._authorization(),
                                                                   **(headers or {})})
            except httpx.TimeoutException as exc:
                raise Transient(f"{call}: timed out talking to {self.connection.host} ({exc.__class__.__name__})"
                                ) from None
            except httpx.TransportError as exc:
                raise Transient(f"{call}: connection to {self.connection.host} failed ({exc.__class__.__name__})"
                                ) from None
            if response.status_code != 429:
                return self.checked(call, response)
            wait = _retry_after(response)
            if self.pacer is not None:
                self.pacer.throttled()
                if wait:
                    self.pacer.pause(wait)
            if attempt == THROTTLED_ATTEMPTS - 1:
                raise Transient(f"{call}: throttled by DPS (429): {_error_of(response)}", wait)
            time.sleep(wait if wait is not None else random.uniform(0.1, 0.5 * 2 ** attempt))
        raise AssertionError("unreachable")

    def checked(self, call: str, response: httpx.Response) -> httpx.Response:
        status = response.status_code
        if status >= 500:
            raise Transient(f"{call}: DPS error {status}: {_error_of(response)}", _retry_after(response))
        if status in (401, 403):
            raise Permanent(f"{call}: refused ({status}): wrong key or policy (a DPS shared access policy with "
                            "enrollment read and write)")
        if status >= 400 and status != 404:
            raise Permanent(f"{call}: refused ({status}): {_error_of(response)}")
        return response

    def json(self, call: str, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise Permanent(f"{call}: malformed response (not JSON: not a DPS service API?)") from None

