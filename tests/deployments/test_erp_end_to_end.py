"""End to end as an ERP system sees it: a real `prefect server` with Basic auth, the deployments from
prefect.yaml, a process worker, and bind-and-provision started over REST — twice with one message id."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from bindery.deployments.erp_client import ErpClient
from bindery.deployments.local_cluster import AUTH, start_worker, stop_worker
from bindery.receiver import ReceiverAuth, create_app
from bindery.settings import Settings, get_settings
from bindery.web.app import create_app as create_web
from tests.conftest import Cli
from tests.deployments.conftest import PREFECT_GROUP
from tests.support.servers import serve
from tests.support.world import ADMIN, make_world


@pytest.mark.slow
@PREFECT_GROUP
@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_erp_starts_bind_and_provision_once(prefect_server: dict[str, str], cli: Cli, settings: Settings,
                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    make_world(cli, tmp_path, {"ERP-1": [f"e-{i}" for i in range(7)]})
    with serve(create_app(ReceiverAuth(basic="bindery:pw"), tmp_path / "recv.db")) as receiver:
        cli.ok("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
               "--credentials", "bindery:pw", "--url", f"{receiver}/interop", "--quota", "1000")
        worker = start_worker(prefect_server, tmp_path / "worker.log")
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
            stop_worker(worker)
    assert held == [f"e-{i}" for i in range(7)]
    shown = cli.ok("batch", "show", "ERP-1", "--user", ADMIN, "--json").json
    assert shown["bound"] == 7 and shown["provisioned"] == {"lab": 7}  # type: ignore[index]
    runs = cli.ok("runs", "ERP-1", "--user", ADMIN, "--json").json
    assert [(r["started_by"], r["started_via"], r["flow_run_id"], r["status"]) for r in runs] == [  # type: ignore[index, union-attr]
        (ADMIN, "prefect-api", str(first.id), "completed")], "the ERP's run, named as such"
    denied = httpx.get(prefect_server["PREFECT_API_URL"] + "/deployments/name/reconcile/reconcile")
    assert denied.status_code == 401, "the API refuses calls without the auth string"


@pytest.mark.slow
@PREFECT_GROUP
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_console_runs_provision_now_as_a_flow_run(prefect_server: dict[str, str], cli: Cli, settings: Settings,
                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With PREFECT_API_URL set, Provision Now from the API is a flow run of the deployment, with its UI link."""
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    make_world(cli, tmp_path, {"WEB-1": [f"p-{i}" for i in range(5)]})
    cli.ok("bind", "WEB-1", "--user", ADMIN)
    token = cli.ok("token", "create", "--user", ADMIN).out.strip().splitlines()[-1]
    with serve(create_app(ReceiverAuth(basic="bindery:pw"), tmp_path / "recv.db")) as receiver:
        cli.ok("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
               "--credentials", "bindery:pw", "--url", f"{receiver}/interop", "--quota", "1000")
        worker = start_worker(prefect_server, tmp_path / "worker.log")
        for name in ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING"):
            monkeypatch.setenv(name, prefect_server[name])
        try:
            with serve(create_web(get_settings())) as url, httpx.Client(
                    base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
                job = api.post("/api/batches/WEB-1/provision", json={"cloud_api": "lab"}).json()
                assert job["flow_run_id"] and job["prefect_ui"].endswith(f"/runs/flow-run/{job['flow_run_id']}")
                deadline = time.monotonic() + 180
                while (status := api.get(f"/api/jobs/{job['id']}").json())["state"] not in ("COMPLETED", "FAILED"):
                    assert time.monotonic() < deadline, status
                    time.sleep(1)
            assert status["state"] == "COMPLETED" and status["provisioned"] == {"lab": 5}, status
            held = sorted(d["ref"] for d in httpx.get(f"{receiver}/devices").json())
        finally:
            stop_worker(worker)
    assert held == [f"p-{i}" for i in range(5)]
    runs = cli.ok("runs", "WEB-1", "--user", ADMIN, "--json").json
    assert [(r["started_via"], r["flow_run_id"]) for r in runs] == [("console", job["flow_run_id"])]  # type: ignore[index, union-attr]
