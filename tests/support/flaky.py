"""A fault-injecting HTTP proxy in front of a real receiver: a share of calls get 503, 429 (with or
without Retry-After), a timeout or a dropped connection — some *after* the receiver stored the
devices, as real networks do."""

from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response

FAULTS = ("503", "429", "429-retry-after", "timeout-after-forward", "drop-after-forward")


@dataclass
class FaultLog:
    rate: float
    seed: int = 7
    seen: list[str] = field(default_factory=list)
    # a test stops the answers (clear ``answering``) to hold a call that reached the target; ``holding``
    # is set once one is held there, stored upstream and not answered
    answering: threading.Event = field(default_factory=threading.Event)
    holding: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)
        self.answering.set()


def create_flaky_proxy(upstream: str, log: FaultLog, timeout_delay: float = 1.5) -> FastAPI:
    app = FastAPI()

    @app.post("/{path:path}")
    async def forward(path: str, request: Request) -> Any:
        body = await request.body()
        fault = log.random.choice(FAULTS) if log.random.random() < log.rate else "ok"
        log.seen.append(fault)
        if fault == "503":
            return Response('{"error": "unavailable"}', status_code=503, media_type="application/json")
        if fault.startswith("429"):
            headers = {"Retry-After": "0.2"} if fault == "429-retry-after" else {}
            return Response('{"error": "slow down"}', status_code=429, headers=headers, media_type="application/json")
        async with httpx.AsyncClient() as client:
            answer = await client.post(f"{upstream}/{path}", content=body,
                                       headers={"Authorization": request.headers.get("Authorization", ""),
                                                "Content-Type": "application/json"})
        if fault == "timeout-after-forward":
            await asyncio.sleep(timeout_delay)
        if not log.answering.is_set():
            log.holding.set()
            await asyncio.to_thread(log.answering.wait)
        if fault == "drop-after-forward":
            raise ConnectionResetError("dropped by the flaky proxy")
        return Response(answer.content, status_code=answer.status_code, media_type="application/json")

    return app
