"""A receiver the test lets through one request at a time: a slow Product Cloud whose pace the test sets,
so a run's progress can be watched step by step without sleeping."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

from bindery.receiver import ReceiverAuth, create_app
from tests.support.servers import serve

WAIT = 60.0


class Gate:
    """Holds every POST until :meth:`let_through` gives it a permit; counts what arrived."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.permits = threading.Semaphore(0)
        self.arrivals = threading.Semaphore(0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            self.arrivals.release()
            await anyio.to_thread.run_sync(self.permits.acquire)
        await self.app(scope, receive, send)

    def arrived(self, count: int) -> None:
        """Block until ``count`` more requests are waiting at the gate."""
        for _ in range(count):
            assert self.arrivals.acquire(timeout=WAIT), "the run never called its receiver"

    def let_through(self, count: int) -> None:
        self.permits.release(count)


@dataclass
class SlowReceiver:
    url: str
    gate: Gate


@contextmanager
def slow_receiver(folder: Path) -> Iterator[SlowReceiver]:
    gate = Gate(create_app(ReceiverAuth(basic="bindery:pw-secret-value"), folder / "slow-recv.db"))
    try:
        with serve(gate) as url:
            try:
                yield SlowReceiver(url, gate)
            finally:
                gate.let_through(1000)  # nothing stays blocked when a test fails half-way
    finally:
        gate.let_through(1000)
