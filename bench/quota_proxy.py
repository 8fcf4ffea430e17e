"""A local proxy in front of a moto server that behaves like AWS IoT under load: 50 ms latency per
call and the per-API quotas, answering 429 ThrottlingException above them."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response

DEFAULT_QUOTAS = {"RegisterCertificateWithoutCA": 10.0, "AttachPolicy": 15.0, "CreateThing": 100.0,
                  "AttachThingPrincipal": 100.0}
RAISED_QUOTAS = dict.fromkeys(DEFAULT_QUOTAS, 100.0)
ROUTES = [("GET", re.compile(r"^/certificates$"), "ListCertificates"),
          ("GET", re.compile(r"^/things$"), "ListThings"),
          ("POST", re.compile(r"^/certificate/register-no-ca$"), "RegisterCertificateWithoutCA"),
          ("PUT", re.compile(r"^/target-policies/[^/]+$"), "AttachPolicy"),
          ("POST", re.compile(r"^/things/[^/]+$"), "CreateThing"),
          ("PUT", re.compile(r"^/things/[^/]+/principals$"), "AttachThingPrincipal")]


@dataclass
class Window:
    """AWS-style quota: at most ``rate`` calls in any one-second window (burst = rate)."""

    rate: float
    calls: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def allow(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.calls = [t for t in self.calls if now - t < 1.0]
            if len(self.calls) >= self.rate:
                return False
            self.calls.append(now)
            return True


@dataclass
class Stats:
    calls: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)

    def reset(self) -> None:
        self.calls.clear()
        self.throttled.clear()


def operation(method: str, path: str) -> str | None:
    for verb, pattern, name in ROUTES:
        if verb == method and pattern.match(path):
            return name
    return None


def create_proxy(upstream: str, quotas: dict[str, float], stats: Stats, latency: float = 0.05) -> FastAPI:
    app = FastAPI()
    windows = {name: Window(rate) for name, rate in quotas.items()}
    client = httpx.AsyncClient(base_url=upstream, timeout=30)

    @app.get("/_bench/stats")
    async def read_stats() -> dict[str, object]:
        return {"calls": dict(stats.calls), "throttled": dict(stats.throttled)}

    @app.post("/_bench/reset")
    async def reset() -> dict[str, bool]:
        stats.reset()
        (await client.post("/moto-api/reset")).raise_for_status()
        return {"ok": True}

    @app.post("/_bench/seed")
    async def seed(request: Request) -> dict[str, int]:
        """Put certificates (ACTIVE) and things straight into moto's backend: a 100,000-device target
        in seconds instead of hours of API calls."""
        from moto.iot.models import FakeCertificate, FakeThing, iot_backends

        body = await request.json()
        backend = iot_backends["123456789012"][body["region"]]
        for pem, thing in zip(body["pems"], body["things"], strict=True):
            certificate = FakeCertificate(pem, "ACTIVE", backend.account_id, backend.region_name)
            backend.certificates[certificate.certificate_id] = certificate
            fake = FakeThing(thing, None, {}, backend.account_id, backend.region_name)
            backend.things[fake.arn] = fake
        return {"certificates": len(backend.certificates), "things": len(backend.things)}

    listing: dict[str, list[dict[str, object]]] = {}

    async def list_certificates(request: Request, headers: dict[str, str]) -> Response:
        """ListCertificates paged like AWS (pageSize, marker / nextMarker); moto returns everything in one
        answer, which would make the client hold the whole registry at once."""
        marker = request.query_params.get("marker")
        size = int(request.query_params.get("pageSize") or 250)
        if marker is None or "all" not in listing:
            answer = await client.get("/certificates", headers=headers)
            if answer.status_code != 200:
                return Response(answer.content, status_code=answer.status_code)
            listing["all"] = answer.json()["certificates"]
        start = int(marker or 0)
        page: dict[str, object] = {"certificates": listing["all"][start:start + size]}
        if start + size < len(listing["all"]):
            page["nextMarker"] = str(start + size)
        return Response(json.dumps(page, default=str), media_type="application/json")

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def forward(path: str, request: Request) -> Response:
        await asyncio.sleep(latency)
        name = operation(request.method, "/" + path)
        if name:
            stats.calls[name] += 1
            if name in windows and not windows[name].allow():
                stats.throttled[name] += 1
                return Response('{"message": "Rate exceeded"}', status_code=429, media_type="application/json",
                                headers={"x-amzn-ErrorType": "ThrottlingException"})
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        if name == "ListCertificates":
            return await list_certificates(request, headers)
        answer = await client.request(request.method, "/" + path, params=request.query_params,
                                      content=await request.body(), headers=headers)
        excluded = {"content-length", "transfer-encoding", "connection", "content-encoding"}
        return Response(answer.content, status_code=answer.status_code,
                        headers={k: v for k, v in answer.headers.items() if k.lower() not in excluded})

    return app


def main() -> None:
    """Run moto and the proxy in this process (apart from the code under test): prints the proxy URL."""
    import argparse
    import sys

    import uvicorn
    from moto.core.config import default_user_config
    from moto.server import ThreadedMotoServer

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--raised", action="store_true")
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    default_user_config["iot"] = {"use_valid_cert": True}
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    app = create_proxy(f"http://{host}:{port}", RAISED_QUOTAS if args.raised else DEFAULT_QUOTAS, Stats(),
                       latency=args.latency)
    print(f"http://127.0.0.1:{args.port}", flush=True)
    sys.stdout.flush()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
