"""Real servers on loopback sockets for connector tests: uvicorn apps in a thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any

from bindery.webserver import serve_in_thread


def held(receiver: str) -> list[str]:
    """The refs a reference receiver holds, sorted (it keeps one per certificate)."""
    import httpx

    return sorted(d["ref"] for d in httpx.get(f"{receiver}/devices").json())


def serve(app: Any, ssl: dict[str, str] | None = None) -> AbstractContextManager[str]:
    """Run an ASGI app on 127.0.0.1 at a free port; yields its base URL."""
    return serve_in_thread(app, ssl=ssl)


@contextmanager
def dropping_server() -> Iterator[int]:
    """A TCP port whose server accepts one connection, reads a little and closes it unanswered."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def drop() -> None:
        connection, _ = listener.accept()
        connection.settimeout(1)
        with suppress(OSError):
            connection.recv(100)
        connection.close()

    threading.Thread(target=drop, daemon=True).start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()
