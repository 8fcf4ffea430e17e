"""An API-Gateway-like front for a reference receiver: the receiver behind it takes ``seconds_per_cert``
for each certificate (as the vendor's AWS receiver does, four AWS calls each), and the gateway cuts any
request at ``cut_at`` seconds with a 504 — while the receiver goes on and registers them all."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response


@dataclass
class GatewayLog:
    requests: list[int] = field(default_factory=list)  # certificates per provision request
    cut: int = 0
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)


def create_slow_gateway(upstream: str, log: GatewayLog, seconds_per_cert: float, cut_at: float) -> FastAPI:
    app = FastAPI()

    async def work(path: str, body: bytes, headers: dict[str, str], seconds: float) -> httpx.Response:
        await asyncio.sleep(seconds)
        async with httpx.AsyncClient(timeout=60) as client:
            return await client.post(f"{upstream}/{path}", content=body, headers=headers)

    @app.post("/{path:path}")
    async def forward(path: str, request: Request) -> Response:
        body = await request.body()
        certs = json.loads(body).get("certs") or []
        headers = {"Authorization": request.headers.get("Authorization", ""), "Content-Type": "application/json"}
        seconds = seconds_per_cert * len(certs)
        if certs:
            log.requests.append(len(certs))
        job = asyncio.create_task(work(path, body, headers, seconds))
        log.tasks.add(job)
        job.add_done_callback(log.tasks.discard)
        done, _ = await asyncio.wait({job}, timeout=cut_at)
        if not done:
            log.cut += 1
            return Response('{"message": "Endpoint request timed out"}', status_code=504,
                            media_type="application/json")
        answer = job.result()
        return Response(answer.content, status_code=answer.status_code, media_type="application/json")

    return app
