"""The ERP client and the docs' shell recipe (docs/api/erp.md) against a real Prefect server behind a proxy that answers
like a busy one (503 before and after doing the work, 429 with Retry-After): one run per message."""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from bindery.deployments.erp_client import ErpClient, ErpError, RetryPolicy
from bindery.deployments.local_cluster import AUTH, ROOT, start_worker, stop_worker
from bindery.receiver import ReceiverAuth, create_app
from bindery.settings import Settings
from tests.conftest import Cli
from tests.deployments.conftest import PREFECT_GROUP
from tests.support.busy_proxy import BusyPlan, create_busy_proxy
from tests.support.servers import serve
from tests.support.world import ADMIN, make_world

FAST = RetryPolicy(attempts=6, base_seconds=0.1, max_seconds=2)
RECIPE = ROOT / "deployments" / "erp_recipe.sh"


def runs_of(server: dict[str, str], deployment: str) -> int:
    api = server["PREFECT_API_URL"]
    auth = tuple(AUTH.split(":", 1))
    dep = httpx.get(f"{api}/deployments/name/{deployment}", auth=auth).json()["id"]  # type: ignore[arg-type]
    return int(httpx.post(f"{api}/flow_runs/count", json={"deployments": {"id": {"any_": [dep]}}},
                          auth=auth).json())  # type: ignore[arg-type]


def delete_run(server: dict[str, str], run_id: str) -> None:
    httpx.delete(f"{server['PREFECT_API_URL']}/flow_runs/{run_id}", auth=tuple(AUTH.split(":", 1)))  # type: ignore[arg-type]


def base_of(server: dict[str, str]) -> str:
    return server["PREFECT_API_URL"].removesuffix("/api")


@pytest.mark.slow
@PREFECT_GROUP
def test_client_rides_out_a_busy_server_and_starts_one_run(prefect_server: dict[str, str]) -> None:
    deployment = "export-manifest/export-manifest"
    before = runs_of(prefect_server, deployment)
    plan = BusyPlan("create_flow_run", ["503", "503-after", "429", "503-after"])
    with serve(create_busy_proxy(base_of(prefect_server), plan)) as proxy:
        erp = ErpClient(f"{proxy}/api", AUTH, policy=FAST)
        try:
            message = uuid.uuid4().hex
            parameters = {"bid": "NONE", "user": ADMIN, "out": "/nonexistent/m.csv"}
            started = time.monotonic()
            first = erp.start("export-manifest", "export-manifest", parameters, message_id=message)
            waited = time.monotonic() - started
            again = erp.start("export-manifest", "export-manifest", parameters, message_id=message)
        finally:
            erp.close()
    try:
        creates = [status for _method, path, status in plan.calls if path.endswith("create_flow_run")]
        created = [c for c in creates[4:] if c not in (429, 503)]  # a busy server's own 503s are retried too
        assert creates[:4] == [503, 503, 429, 503] and len(created) == 2 and created[0] in (200, 201)
        assert waited >= 1.0, "the 429's Retry-After: 1 was honoured"
        assert again.id == first.id and runs_of(prefect_server, deployment) == before + 1
    finally:
        delete_run(prefect_server, first.id)


@pytest.mark.slow
@PREFECT_GROUP
def test_client_stops_at_once_on_a_4xx_with_the_servers_message(prefect_server: dict[str, str]) -> None:
    plan = BusyPlan("never", [])
    with serve(create_busy_proxy(base_of(prefect_server), plan)) as proxy:
        erp = ErpClient(f"{proxy}/api", AUTH, policy=FAST)
        with pytest.raises(ErpError, match=r"GET /api/deployments/name/no-such-flow/x: 404 Deployment not found"):
            erp.start("no-such-flow", "x", {}, message_id="m")
        erp.close()
        wrong_auth = ErpClient(f"{proxy}/api", "erp:wrong", policy=FAST)
        with pytest.raises(ErpError, match="401"):
            wrong_auth.deployment_id("reconcile", "reconcile")
        wrong_auth.close()
    assert len(plan.calls) == 2, plan.calls


@pytest.mark.slow
@PREFECT_GROUP
def test_client_gives_up_after_its_attempts(prefect_server: dict[str, str]) -> None:
    plan = BusyPlan("deployments/name", ["503"] * 10)
    with serve(create_busy_proxy(base_of(prefect_server), plan)) as proxy:
        erp = ErpClient(f"{proxy}/api", AUTH, policy=RetryPolicy(attempts=3, base_seconds=0.05, max_seconds=0.2))
        with pytest.raises(ErpError, match=r"503 Service Unavailable \(after 3 attempts\)"):
            erp.deployment_id("reconcile", "reconcile")
        erp.close()
    assert len(plan.calls) == 3


def readme_recipe() -> str:
    """The ERP recipe block of docs/api/erp.md (it must be the script, word for word)."""
    page = (ROOT / "docs" / "api" / "erp.md").read_text()
    found = re.search(r"<!-- erp_recipe\.sh -->\n```sh\n(.*?)```", page, re.DOTALL)
    assert found, "docs/api/erp.md lost its ERP recipe block"
    return found.group(1)


def test_readme_recipe_is_the_script() -> None:
    assert readme_recipe() == RECIPE.read_text()


@pytest.mark.slow
@PREFECT_GROUP
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_readme_recipe_as_written_against_a_busy_server_on_another_port(
        prefect_server: dict[str, str], cli: Cli, settings: Settings, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    make_world(cli, tmp_path, {"RCP-1": [f"r-{i}" for i in range(6)]})
    script = tmp_path / "recipe.sh"
    script.write_text(readme_recipe())
    plan = BusyPlan("create_flow_run", ["503", "503-after", "429"])
    with serve(create_app(ReceiverAuth(basic="bindery:pw"), tmp_path / "recv.db")) as receiver, \
            serve(create_busy_proxy(base_of(prefect_server), plan)) as proxy:
        assert not proxy.endswith(":4200")
        cli.ok("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
               "--credentials", "bindery:pw", "--url", f"{receiver}/interop", "--quota", "1000")
        worker = start_worker(prefect_server, tmp_path / "worker.log")
        env = {**os.environ, "PREFECT_API_URL": f"{proxy}/api", "PREFECT_API_AUTH_STRING": AUTH}
        arguments = ["bash", str(script), "bind-and-provision/bind-and-provision", f"PO-{uuid.uuid4().hex[:8]}",
                     f'{{"bid": "RCP-1", "user": "{ADMIN}", "cloud_api": "lab"}}']
        try:
            first = subprocess.run(arguments, env=env, capture_output=True, text=True, timeout=300)
            again = subprocess.run(arguments, env=env, capture_output=True, text=True, timeout=300)
            unknown = subprocess.run(["bash", str(script), "no-such-flow/x", "m", "{}"], env=env,
                                     capture_output=True, text=True, timeout=60)
        finally:
            stop_worker(worker)
        held = sorted(d["ref"] for d in httpx.get(f"{receiver}/devices").json())
    assert first.returncode == 0, (first.stdout, first.stderr, (tmp_path / "worker.log").read_text()[-2000:])
    run_id, state = first.stdout.split()
    assert state == "COMPLETED" and again.returncode == 0 and again.stdout.split() == [run_id, "COMPLETED"]
    creates = [status for _method, path, status in plan.calls if path.endswith("create_flow_run")]
    # the proxy's three, then the two creations; a Prefect server on SQLite under load may answer another
    # 503 of its own ("database is locked"), which the recipe retries like the others. The "503-after" call
    # reached Prefect, which made the run (the retry then finds it: 200) — unless under load Prefect itself
    # refused that forwarded call, when the retry makes it (201). One run either way: both invocations above
    # answered the same run id.
    answered = [c for c in creates[3:] if c not in (429, 503)]
    assert creates[:3] == [503, 503, 429] and answered in ([200, 200], [201, 200]), creates
    assert held == [f"r-{i}" for i in range(6)]
    assert unknown.returncode != 0 and "Deployment not found" in unknown.stderr and unknown.stdout == ""
