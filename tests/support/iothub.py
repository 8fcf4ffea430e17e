"""A local HTTPS fake of the Azure IoT Hub registry REST API (api-version 2021-04-12) that checks
the SharedAccessSignature the SDK sends: PUT/GET/DELETE /devices/{id}, POST /devices (bulk),
GET /statistics/devices. ``faults`` injects responses for the next requests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

API_VERSION = "2021-04-12"
POLICY = "registryReadWrite"
KEY = base64.b64encode(b"bindery-test-shared-access-key-32").decode()


@dataclass
class Fault:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Hub:
    host: str = ""
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def connection_string(self, key: str = KEY) -> str:
        return f"HostName={self.host};SharedAccessKeyName={POLICY};SharedAccessKey={key}"


def _signature_ok(header: str, host: str) -> bool:
    if not header.startswith("SharedAccessSignature "):
        return False
    fields = dict(part.split("=", 1) for part in header[len("SharedAccessSignature "):].split("&"))
    expected_sr = urllib.parse.quote_plus(host)
    if fields.get("sr") != expected_sr or fields.get("skn") != POLICY or int(fields.get("se", "0")) < time.time():
        return False
    message = f"{fields['sr']}\n{fields['se']}".encode()
    digest = base64.b64encode(hmac.new(base64.b64decode(KEY), message, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(urllib.parse.unquote(fields.get("sig", "")), digest)


def _identity(device_id: str, body: dict[str, Any]) -> dict[str, Any]:
    auth = body.get("authentication") or {}
    return {"deviceId": device_id, "status": body.get("status", "enabled"), "etag": "AAAA",
            "authentication": {"type": auth.get("type"), "x509Thumbprint": auth.get("x509Thumbprint") or {}}}


def create_hub_app(hub: Hub) -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        hub.calls.append(f"{request.method} {request.url.path}")
        if hub.faults:
            fault = hub.faults.pop(0)
            if fault.delay:
                import asyncio

                await asyncio.sleep(fault.delay)
            return Response(fault.body, status_code=fault.status, headers=fault.headers,
                            media_type="application/json")
        if request.query_params.get("api-version") != API_VERSION:
            return JSONResponse({"Message": "unsupported api-version"}, status_code=400)
        if not _signature_ok(request.headers.get("Authorization", ""), hub.host):
            return JSONResponse({"Message": "Unauthorized"}, status_code=401)
        return await call_next(request)  # type: ignore[no-any-return]

    @app.put("/devices/{device_id}")
    async def put_device(device_id: str, request: Request) -> Any:
        hub.devices[device_id] = _identity(device_id, await request.json())
        return hub.devices[device_id]

    @app.get("/devices/{device_id}")
    async def get_device(device_id: str) -> Any:
        if device_id not in hub.devices:
            return JSONResponse({"Message": "DeviceNotFound"}, status_code=404)
        return hub.devices[device_id]

    @app.delete("/devices/{device_id}")
    async def delete_device(device_id: str) -> Response:
        if hub.devices.pop(device_id, None) is None:
            return JSONResponse({"Message": "DeviceNotFound"}, status_code=404)
        return Response(status_code=204)

    @app.post("/devices")
    async def bulk(request: Request) -> Any:
        items = await request.json()
        if not isinstance(items, list) or len(items) > 100:
            return JSONResponse({"Message": "too many devices in one bulk call"}, status_code=400)
        errors = []
        for item in items:
            device_id = item["id"]
            if item.get("importMode") == "create" and device_id in hub.devices:
                errors.append({"deviceId": device_id, "errorCode": "DeviceAlreadyExists",
                               "errorStatus": f"A device with ID '{device_id}' is already registered."})
            else:
                hub.devices[device_id] = _identity(device_id, item)
        return JSONResponse({"isSuccessful": not errors, "errors": errors, "warnings": []},
                            status_code=400 if errors else 200)

    @app.post("/devices/query")
    async def query(request: Request) -> Any:
        """Twins of every device, in pages (x-ms-max-item-count) linked by x-ms-continuation."""
        size = int(request.headers.get("x-ms-max-item-count") or 100)
        start = int(request.headers.get("x-ms-continuation") or 0)
        ids = sorted(hub.devices)
        page = [{"deviceId": d, "status": hub.devices[d]["status"], "authenticationType": "selfSigned",
                 "x509Thumbprint": hub.devices[d]["authentication"]["x509Thumbprint"]} for d in ids[start:start + size]]
        after = start + size if start + size < len(ids) else None
        return JSONResponse(page, headers={"x-ms-item-type": "Twin", "x-ms-continuation": str(after or "")})

    @app.get("/statistics/devices")
    async def statistics() -> Any:
        return {"totalDeviceCount": len(hub.devices), "enabledDeviceCount": len(hub.devices),
                "disabledDeviceCount": 0}

    return app


@contextmanager
def running_hub(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    """The fake hub over https on loopback, trusted through REQUESTS_CA_BUNDLE; its connection string in
    the environment variable HUB_CS."""
    from tests.support.servers import serve
    from tests.support.tls import make_tls

    tls = make_tls(folder)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca))
    hub = Hub()
    with serve(create_hub_app(hub), ssl={"cert": str(tls.cert), "key": str(tls.key)}) as url:
        hub.host = url.removeprefix("https://")
        monkeypatch.setenv("HUB_CS", hub.connection_string())
        yield hub
