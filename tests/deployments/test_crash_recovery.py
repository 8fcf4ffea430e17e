"""Crashes end to end, against a real Prefect server, process workers and a slow receiver that counts what
it is sent: a worker killed with its flow run (-9) is noticed by the zombie automation and its run started
again by itself; a Prefect server killed and restarted mid-run costs nothing; a run that crashes every
time stops after BINDERY_CRASH_RESTARTS restarts with the alert sent."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI, Request

from bindery.deployments.automations import RECOVERY, ZOMBIES
from bindery.deployments.erp_client import ErpClient
from bindery.deployments.local_cluster import AUTH, kill_server, restart_server, start_worker, stop_worker
from bindery.provisioning.lease import flow_run_of
from bindery.receiver import Store, _receive
from bindery.settings import Settings
from tests.conftest import Cli
from tests.deployments.conftest import PREFECT_GROUP
from tests.deployments.test_alerts import Sink, sink  # noqa: F401  (fixture)
from tests.support import db
from tests.support.servers import serve
from tests.support.world import ADMIN, MEMBER, make_world

BINDERY = str(Path(sys.executable).parent / "bindery")
ZOMBIE_SECONDS = 65  # a heartbeat lost while the server is down (30 s, Prefect's least) and 5 s to spare
T = TypeVar("T")


class SlowReceiver:
    """The reference receiver's store behind a slow answer; counts every certificate it is sent."""

    def __init__(self, path: Path, delay: float) -> None:
        self.store, self.sent, self.requests = Store(path), Counter[str](), 0
        self.app = FastAPI()

        @self.app.post("/interop")
        async def interop(request: Request) -> Any:
            body = await request.json()
            if body.get("action") == "info":
                return {"action": "info", "compatibilityVersion": 1}
            self.requests += 1
            self.sent.update(str(item.get("ref")) for item in body["certs"])
            await asyncio.sleep(delay)
            return [_receive(item, self.store) for item in body["certs"]]

    @property
    def resent(self) -> int:
        return sum(self.sent.values()) - len(self.sent)


def wait_until(check: Callable[[], T], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.2)


def flow_runs(env: dict[str, str], **flow_run_filter: Any) -> list[dict[str, Any]]:
    found = httpx.post(env["PREFECT_API_URL"] + "/flow_runs/filter", auth=tuple(AUTH.split(":")),  # type: ignore[arg-type]
                       json={"flow_runs": flow_run_filter, "sort": "START_TIME_ASC"}, timeout=30)
    found.raise_for_status()
    return list(found.json())


def reruns_of(env: dict[str, str], flow_run_id: str) -> list[dict[str, Any]]:
    return flow_runs(env, tags={"all_": [f"bindery:replaces:{flow_run_id}"]})


def bindery(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([BINDERY, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    return done.stdout


@pytest.fixture
def recovery(prefect_server: dict[str, str], cli: Cli, settings: Settings, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The automations `bindery deploy` makes, with a short window; removed afterwards (the server is shared)."""
    for name, value in {"ALLOW_PRIVATE_TARGETS": "1", "PROVISION_CHUNK_SIZE": "20", "PROVISION_CONCURRENCY": "2",
                        "ZOMBIE_SECONDS": str(ZOMBIE_SECONDS), "CRASH_RESTARTS": "2",
                        "CRASH_BACKOFF_SECONDS": "1", "RETRY_BASE_SECONDS": "0.2"}.items():
        monkeypatch.setenv(f"BINDERY_{name}", value)
    env = {**os.environ, **{k: prefect_server[k] for k in ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING")}}
    first, again = bindery(env, "automations"), bindery(env, "automations")
    assert f"{ZOMBIES} (" in first and first == again, "a second deploy changes nothing"
    yield env
    auth = tuple(AUTH.split(":"))
    for automation in httpx.post(env["PREFECT_API_URL"] + "/automations/filter", auth=auth, json={}).json():  # type: ignore[arg-type]
        if automation["name"] in (ZOMBIES, RECOVERY):
            httpx.delete(env["PREFECT_API_URL"] + f"/automations/{automation['id']}", auth=auth)  # type: ignore[arg-type]


def add_lab(cli: Cli, url: str) -> None:
    cli.ok("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
           "--credentials", "bindery:pw", "--url", f"{url}/interop", "--quota", "1000", "--no-check")


def holder_pid(url: str) -> tuple[int, str | None] | None:
    holder = db.scalar(url, "SELECT holder FROM run_lease")
    return (int(str(holder).split(":")[1]), flow_run_of(str(holder))) if holder else None


def kill_group(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(os.getpgid(pid), signal.SIGKILL)


def left_over(url: str) -> tuple[object, object]:
    return (db.scalar(url, "SELECT COUNT(*) FROM run_lease"),
            db.scalar(url, "SELECT COUNT(*) FROM run WHERE status = 'running'"))


@pytest.mark.slow
@PREFECT_GROUP
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_killed_worker_and_run_are_crashed_and_started_again(recovery: dict[str, str], cli: Cli,
                                                               settings: Settings, tmp_path: Path) -> None:
    devices = [f"z-{i:03d}" for i in range(240)]
    make_world(cli, tmp_path, {"CR-1": devices})
    cli.ok("bind", "CR-1", "--user", MEMBER)
    url = settings.resolved_database_url
    receiver = SlowReceiver(tmp_path / "recv.db", delay=0.6)
    with serve(receiver.app) as address:
        add_lab(cli, address)
        worker = start_worker(recovery, tmp_path / "worker-1.log")
        erp = ErpClient(recovery["PREFECT_API_URL"], AUTH)
        replacement = None
        try:
            run = erp.start("provision-batch", "provision-batch", {"bid": "CR-1", "user": ADMIN, "cloud_api": "lab"},
                            message_id=uuid.uuid4().hex)
            wait_until(lambda: len(receiver.sent) >= 40, 120, "the run provisions")
            pid, held_by = wait_until(lambda: holder_pid(url), 10, "the run holds the lease")
            assert held_by == run.id, "the lease names the flow run holding it"
            for victim in (worker.pid, pid):  # a lost host: the worker and its flow run, each in its group
                kill_group(victim)
            worker.wait()
            killed_at, sent_at_kill = time.monotonic(), len(receiver.sent)
            assert sent_at_kill < len(devices), "killed mid-run"
            replacement = start_worker(recovery, tmp_path / "worker-2.log")
            wait_until(lambda: erp.get(run.id).state == "CRASHED", ZOMBIE_SECONDS + 45, "the zombie is Crashed")
            crashed_after = time.monotonic() - killed_at
            row = wait_until(lambda: db.rows(url, "SELECT id, status, message FROM run WHERE flow_run_id = "
                                                  f"'{run.id}' AND status = 'failed'"), 60, "the history says so")
            rerun = wait_until(lambda: reruns_of(recovery, run.id), 60, "a rerun starts by itself")[0]
            done = erp.wait(rerun["id"], timeout=120, every=1)
            logs = (tmp_path / "worker-2.log").read_text()[-3000:]
            assert done.state == "COMPLETED", (done, logs)
            assert len(reruns_of(recovery, run.id)) == 1, "one rerun"
        finally:
            erp.close()
            for each in (worker, replacement):
                if each is not None:
                    stop_worker(each)
    print(f"\ncrashed {crashed_after:.0f} s after the kill; {receiver.resent} certificates re-sent "
          f"({sent_at_kill} had reached the receiver)", file=sys.__stderr__)
    assert sorted(d["ref"] for d in receiver.store.devices()) == devices, "the receiver holds every device once"
    assert receiver.resent <= 2 * 20, "at most the requests in flight (two chunks of 20) are sent again"
    assert left_over(url) == (0, 0), "no lease, no running row"
    assert row[0][2] == "crashed: process lost"
    history = cli.ok("runs", "CR-1", "--user", ADMIN, "--json").json
    assert [(r["status"], r["started_via"], r["flow_run_id"], r["replaces_run_id"]) for r in history] == [  # type: ignore[index, union-attr]
        ("completed", "recovery", rerun["id"], row[0][0]), ("failed", "prefect-api", run.id, None)]
    assert "bindery:attempt:2" in rerun["tags"]


@pytest.mark.slow
@PREFECT_GROUP
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_prefect_server_killed_and_restarted_mid_run_costs_nothing(recovery: dict[str, str], cli: Cli,
                                                                     settings: Settings, tmp_path: Path) -> None:
    # an outage shorter than the window costs nothing (docs: operations/failures.md); this server's restart
    # may take a minute on a loaded machine, so the window here is longer than the outage can be
    bindery({**recovery, "BINDERY_ZOMBIE_SECONDS": "300"}, "automations")
    devices = [f"s-{i:03d}" for i in range(240)]
    make_world(cli, tmp_path, {"CR-2": devices})
    cli.ok("bind", "CR-2", "--user", MEMBER)
    url = settings.resolved_database_url
    receiver = SlowReceiver(tmp_path / "recv.db", delay=0.6)
    with serve(receiver.app) as address:
        add_lab(cli, address)
        worker = start_worker(recovery, tmp_path / "worker.log")
        erp = ErpClient(recovery["PREFECT_API_URL"], AUTH)
        try:
            run = erp.start("provision-batch", "provision-batch", {"bid": "CR-2", "user": ADMIN, "cloud_api": "lab"},
                            message_id=uuid.uuid4().hex)
            wait_until(lambda: len(receiver.sent) >= 40, 120, "the run provisions")
            log = tmp_path / "worker.log"
            seen = len(log.read_bytes())
            kill_server(recovery)
            try:  # down until the flow run has found nobody there (its events, state reports, progress)
                wait_until(lambda: b"Connect call failed" in log.read_bytes()[seen:], 45, "the run misses the server")
            finally:
                restart_server(recovery)
            done = erp.wait(run.id, timeout=120, every=1)
            assert done.state == "COMPLETED", (done, (tmp_path / "worker.log").read_text()[-3000:])
            assert reruns_of(recovery, run.id) == [], "nothing started again"
        finally:
            erp.close()
            stop_worker(worker)
    assert sorted(d["ref"] for d in receiver.store.devices()) == devices
    assert receiver.resent == 0, "nothing sent twice"
    assert left_over(url) == (0, 0)
    history = cli.ok("runs", "CR-2", "--user", ADMIN, "--json").json
    assert [(r["status"], r["flow_run_id"]) for r in history] == [("completed", run.id)]  # type: ignore[index, union-attr]


@pytest.mark.slow
@PREFECT_GROUP
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_run_crashing_every_time_stops_after_the_restarts_and_alerts(
        recovery: dict[str, str], cli: Cli, settings: Settings, tmp_path: Path,
        sink: tuple[Sink, str]) -> None:  # noqa: F811
    alerts, hook = sink
    bindery({**recovery, "BINDERY_ALERT_WEBHOOK_URL": hook}, "alerts")
    make_world(cli, tmp_path, {"CR-3": [f"c-{i:03d}" for i in range(200)]})
    cli.ok("bind", "CR-3", "--user", MEMBER)
    url = settings.resolved_database_url
    receiver = SlowReceiver(tmp_path / "recv.db", delay=0.6)
    killed: list[str] = []
    with serve(receiver.app) as address:
        add_lab(cli, address)
        worker = start_worker(recovery, tmp_path / "worker.log")
        erp = ErpClient(recovery["PREFECT_API_URL"], AUTH)
        try:
            erp.start("provision-batch", "provision-batch", {"bid": "CR-3", "user": ADMIN, "cloud_api": "lab"},
                      message_id=uuid.uuid4().hex)
            for _attempt in range(3):  # the run and its two restarts, each killed once it sends (its worker lives)
                pid, flow_run = wait_until(lambda sent=receiver.requests: (held := holder_pid(url))  # type: ignore[misc]
                                           and held[1] not in killed and receiver.requests > sent and held,
                                           90, "the next attempt sends")
                kill_group(pid)
                killed.append(str(flow_run))
            alert = alerts.wait_for("bindery.provisioning.failed", "CR-3", timeout=90)
            states = [erp.get(run).state for run in killed]
            assert reruns_of(recovery, killed[-1]) == [], "no fourth run"
        finally:
            erp.close()
            stop_worker(worker)
    assert alert["counts"] == {"crashes": 3} and alert["cloud_api"] == "lab" and alert["account"] == "Acme"
    assert "crashed 3 times" in alert["message"], alert
    assert states == ["CRASHED"] * 3, "the worker saw each flow-run process die"
    assert left_over(url) == (0, 0), "recovery freed the last lease and closed every row"
    history = cli.ok("runs", "CR-3", "--user", ADMIN, "--json").json
    assert [(r["status"], r["message"]) for r in history] == [("failed", "crashed: process lost")] * 3  # type: ignore[index, union-attr]
    assert [r["flow_run_id"] for r in history] == killed[::-1]  # type: ignore[index, union-attr]
