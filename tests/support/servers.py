"""Real servers on loopback sockets for connector tests: uvicorn apps in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import uvicorn


@contextmanager
def serve(app: Any, ssl: dict[str, str] | None = None) -> Iterator[str]:
    """Run an ASGI app on 127.0.0.1 at a free port; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off",
                            timeout_graceful_shutdown=1,
                            **({"ssl_certfile": ssl["cert"], "ssl_keyfile": ssl["key"]} if ssl else {}))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"{'https' if ssl else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        server.force_exit = True  # do not wait for clients' keep-alive connections
        thread.join(timeout=10)


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
