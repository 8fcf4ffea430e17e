"""A proxy in front of a real Prefect server that answers like a busy one: the first calls matching a
path get 503 (some only *after* forwarding them, as when the server did the work but the answer was
lost) or 429 with Retry-After; everything else passes through unchanged, auth included."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response

HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding"}


@dataclass
class BusyPlan:
    """``faults`` are used up in order by calls whose path contains ``path_part``: "503" (not forwarded),
    "503-after" (forwarded, then 503), "429" (Retry-After: 1)."""

    path_part: str
    faults: list[str]
    calls: list[tuple[str, str, int]] = field(default_factory=list)


def create_busy_proxy(upstream: str, plan: BusyPlan) -> FastAPI:
    app = FastAPI()
    upstream = upstream.rstrip("/")

    @app.api_route("/{path:path}", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
    async def forward(path: str, request: Request) -> Response:
        fault = plan.faults.pop(0) if plan.path_part in path and plan.faults else "ok"
        if fault == "503":
            plan.calls.append((request.method, path, 503))
            return Response('{"detail": "Service Unavailable"}', status_code=503, media_type="application/json")
        if fault == "429":
            plan.calls.append((request.method, path, 429))
            return Response('{"detail": "slow down"}', status_code=429, headers={"Retry-After": "1"},
                            media_type="application/json")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        async with httpx.AsyncClient(timeout=60) as client:
            answer = await client.request(request.method, f"{upstream}/{path}", params=request.query_params,
                                          content=await request.body(), headers=headers)
        status = 503 if fault == "503-after" else answer.status_code
        plan.calls.append((request.method, path, status))
        if fault == "503-after":
            return Response('{"detail": "Service Unavailable"}', status_code=503, media_type="application/json")
        return Response(answer.content, status_code=answer.status_code,
                        media_type=answer.headers.get("content-type", "application/json"))

    return app
