"""End to end as an ERP system sees it: a real `prefect server` with Basic auth, the deployments from
prefect.yaml, a process worker, and bind-and-provision started over REST — twice with one message id."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bindery.receiver import ReceiverAuth, create_app
from bindery.settings import Settings
from deployments.erp_client import ErpClient
from tests.conftest import Cli
from tests.support.servers import serve
from tests.support.world import ADMIN, make_world

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).parent / "prefect")
AUTH = "erp:s3cret-erp"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("prefect")
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
           "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
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


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_erp_starts_bind_and_provision_once(prefect_server: dict[str, str], cli: Cli, settings: Settings,
                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    make_world(cli, tmp_path, {"ERP-1": [f"e-{i}" for i in range(7)]})
    with serve(create_app(ReceiverAuth(basic="bindery:pw"), tmp_path / "recv.db")) as receiver:
        cli.ok("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
               "--credentials", "bindery:pw", "--url", f"{receiver}/interop", "--quota", "1000")
        worker_env = {**prefect_server, **{k: v for k, v in os.environ.items() if k.startswith("BINDERY_")}}
        worker = subprocess.Popen([PREFECT, "worker", "start", "--pool", "bindery", "--limit", "2"], env=worker_env,
                                  stdout=(tmp_path / "worker.log").open("wb"), stderr=subprocess.STDOUT, cwd=ROOT)
        erp = ErpClient(prefect_server["PREFECT_API_URL"], AUTH)
        try:
            parameters = {"bid": "ERP-1", "user": ADMIN, "cloud_api": "lab"}
            message = f"PO-4711-{uuid.uuid4().hex[:8]}"  # one server serves both databases' runs
            first = erp.start("bind-and-provision", "bind-and-provision", parameters, message_id=message)
            again = erp.start("bind-and-provision", "bind-and-provision", parameters, message_id=message)
            assert again.id == first.id, "a repeated ERP message starts one run"
            done = erp.wait(first.id, timeout=240, every=1)
            assert done.state == "COMPLETED", (done, (tmp_path / "worker.log").read_text()[-3000:])
            held = sorted(d["ref"] for d in httpx.get(f"{receiver}/devices").json())
        finally:
            erp.close()
            worker.terminate()
            worker.wait(timeout=30)
    assert held == [f"e-{i}" for i in range(7)]
    shown = cli.ok("batch", "show", "ERP-1", "--user", ADMIN, "--json").json
    assert shown["bound"] == 7 and shown["provisioned"] == {"lab": 7}  # type: ignore[index]
    denied = httpx.get(prefect_server["PREFECT_API_URL"] + "/deployments/name/reconcile/reconcile")
    assert denied.status_code == 401, "the API refuses calls without the auth string"
