"""A Prefect server and process workers on this host, as subprocesses: for trying the scale-out setup
on one machine, for `bench/provision --workers N` and for the end-to-end tests. Production runs the same
commands on several hosts (docs/operations/scaling.md)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bindery.settings import bindery_variables, child_environment, get_settings

ROOT = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).parent / "prefect")
AUTH = "erp:s3cret-erp"  # Basic auth of these local servers (PREFECT_SERVER_API_AUTH_STRING)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_servers: dict[str, subprocess.Popen[bytes]] = {}  # by API URL: the server process running now
_started: dict[str, tuple[Path, dict[str, str], str]] = {}  # by API URL: how it was started


def _start_server(home: Path, env: dict[str, str], auth: str) -> subprocess.Popen[bytes]:
    url = env["PREFECT_API_URL"]
    port = url.rsplit(":", 1)[1].split("/")[0]
    log = (home / "server.log").open("ab")
    server = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", port],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    user, _, password = auth.partition(":")
    while True:
        try:
            if httpx.get(f"{url}/health", auth=(user, password)).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise RuntimeError(f"prefect server did not start: {(home / 'server.log').read_text()[-2000:]}")
        time.sleep(0.5)
    _servers[url], _started[url] = server, (home, env, auth)
    return server


def kill_server(env: dict[str, str]) -> None:
    """kill -9 the server of ``env`` (a crashed host): its clients find nobody there."""
    server = _servers[env["PREFECT_API_URL"]]
    server.kill()
    server.wait()


def restart_server(env: dict[str, str]) -> None:
    """The killed server started again on the same port, database and environment."""
    home, server_env, auth = _started[env["PREFECT_API_URL"]]
    _start_server(home, server_env, auth)


@contextmanager
def prefect_server(home: Path, database_url: str | None = None, auth: str = AUTH,
                   deploy: bool = True) -> Iterator[dict[str, str]]:
    """`prefect server start` on ``database_url`` (default SQLite under ``home``) and, with ``deploy``, the
    `bindery` process pool and `prefect deploy --all`; yields the environment for clients and workers."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**child_environment(get_settings()), "PREFECT_HOME": str(home), "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
           "PREFECT_API_DATABASE_CONNECTION_URL": database_url or f"sqlite+aiosqlite:///{home / 'prefect.db'}",
           "PREFECT_SERVER_API_AUTH_STRING": auth, "PREFECT_API_AUTH_STRING": auth,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_WORKER_QUERY_SECONDS": "1",
           "BINDERY_PROJECT_DIR": str(ROOT)}
    _start_server(home, env, auth)
    try:
        if deploy:
            subprocess.run([PREFECT, "work-pool", "create", "bindery", "--type", "process"], env=env, check=True,
                           capture_output=True, cwd=ROOT)
            deployed = subprocess.run([PREFECT, "--no-prompt", "deploy", "--all"], env=env, capture_output=True,
                                      text=True, cwd=ROOT)
            if deployed.returncode != 0:
                raise RuntimeError(f"prefect deploy failed: {deployed.stdout[-3000:]}{deployed.stderr[-3000:]}")
        yield env
    finally:
        server = _servers.pop(env["PREFECT_API_URL"])
        _started.pop(env["PREFECT_API_URL"])
        server.terminate()
        server.wait(timeout=30)


def start_worker(server_env: dict[str, str], log: Path, limit: int = 2) -> subprocess.Popen[bytes]:
    """A process worker of the `bindery` pool in a session of its own, with this process's BINDERY_*
    settings, as `bindery worker` starts it (heartbeats every BINDERY_HEARTBEAT_SECONDS). Its flow runs
    start in sessions of their own too (Prefect isolates them)."""
    env = {**server_env, **bindery_variables(),
           "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(get_settings().heartbeat_seconds)}
    return subprocess.Popen([PREFECT, "worker", "start", "--pool", "bindery", "--limit", str(limit)], env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def parent_pid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def process_tree(root: int) -> list[int]:
    """``root`` and its live descendants (Linux /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = parent_pid(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree
