"""A corporate-style HTTPS proxy on loopback: HTTP CONNECT, resolving names from its own table (the client's
machine has no DNS for them), then piping bytes both ways. Records every CONNECT it was asked for."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field


@dataclass
class ProxyLog:
    hosts: dict[str, tuple[str, int]]  # name -> where the proxy really connects
    connects: list[str] = field(default_factory=list)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


def _serve(client: socket.socket, log: ProxyLog) -> None:
    with client:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = client.recv(4096)
            if not chunk:
                return
            request += chunk
        method, target, _version = request.split(b"\r\n", 1)[0].decode().split(" ", 2)
        host = target.rpartition(":")[0]
        log.connects.append(target)
        if method != "CONNECT" or host not in log.hosts:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        upstream = socket.create_connection(log.hosts[host], timeout=10)
        upstream.settimeout(None)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
        back.start()
        _pipe(client, upstream)
        back.join(timeout=10)
        upstream.close()


@contextmanager
def connect_proxy(log: ProxyLog) -> Iterator[str]:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(32)
    running = True

    def accept() -> None:
        while running:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_serve, args=(client, log), daemon=True).start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        running = False
        listener.close()
