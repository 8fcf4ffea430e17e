"""A real `prefect server` process with Basic auth, the deployments of prefect.yaml and process workers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).parent / "prefect")
AUTH = "erp:s3cret-erp"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def prefect_server(home: Path, database_url: str | None = None) -> Iterator[dict[str, str]]:
    """Server on ``database_url`` (default SQLite under ``home``), pool `bindery`, `prefect deploy --all`;
    yields the environment for clients and workers."""
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
           "PREFECT_API_DATABASE_CONNECTION_URL": database_url or f"sqlite+aiosqlite:///{home / 'prefect.db'}",
           "PREFECT_SERVER_API_AUTH_STRING": AUTH, "PREFECT_API_AUTH_STRING": AUTH,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_WORKER_QUERY_SECONDS": "1",
           "BINDERY_PROJECT_DIR": str(ROOT)}
    log = (home / "server.log").open("wb")
    server = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", auth=tuple(AUTH.split(":"))).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise RuntimeError(f"prefect server did not start: {(home / 'server.log').read_text()[-2000:]}")
        time.sleep(0.5)
    try:
        subprocess.run([PREFECT, "work-pool", "create", "bindery", "--type", "process"], env=env, check=True,
                       capture_output=True, cwd=ROOT)
        deployed = subprocess.run([PREFECT, "--no-prompt", "deploy", "--all"], env=env, capture_output=True,
                                  text=True, cwd=ROOT)
        assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
        yield env
    finally:
        server.terminate()
        server.wait(timeout=30)


def start_worker(server_env: dict[str, str], log: Path, limit: int = 2) -> subprocess.Popen[bytes]:
    """A process worker of the `bindery` pool in its own process group (its flow runs join the group, as
    they would share a host), with this process's BINDERY_* settings."""
    env = {**server_env, **{k: v for k, v in os.environ.items() if k.startswith("BINDERY_")}}
    return subprocess.Popen([PREFECT, "worker", "start", "--pool", "bindery", "--limit", str(limit)], env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
