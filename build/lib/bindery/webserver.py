"""Running an ASGI app (the reference receiver) on a loopback port in a background thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0,
                    ssl: dict[str, str] | None = None) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL (a free port when ``port`` is 0)."""
    import uvicorn

    tls = {"ssl_certfile": ssl["cert"], "ssl_keyfile": ssl["key"]} if ssl else {}
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=1, **tls))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"{'https' if ssl else 'http'}://{host}:{bound}"
    finally:
        server.should_exit = True
        server.force_exit = True  # do not wait for clients' keep-alive connections
        thread.join(timeout=10)
