"""Scale-out: one batch across three Prefect workers, PostgreSQL for Bindery and Prefect, one worker
killed with kill -9 mid-run — every device provisioned exactly once, records equal to the target."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from bindery.deployments.erp_client import ErpClient
from bindery.deployments.local_cluster import AUTH, parent_pid, prefect_server, process_tree, start_worker, stop_worker
from bindery.receiver import ReceiverAuth, create_app
from bindery.settings import Settings
from tests.conftest import PG_ADMIN_URL, Cli
from tests.support import db
from tests.support.servers import serve
from tests.support.world import ADMIN, MEMBER, make_world

DEVICES = [f"w-{i:03d}" for i in range(240)]


@pytest.fixture(scope="module")
def prefect_on_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    name = f"prefect_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with prefect_server(tmp_path_factory.mktemp("prefect-pg"),
                            f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}") as env:
            yield env
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pid_of(holder: str) -> int:
    return int(holder.split(":")[1])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_three_workers_one_killed_every_device_once(prefect_on_postgres: dict[str, str], cli: Cli,
                                                     settings: Settings, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"ALLOW_PRIVATE_TARGETS": "1", "PROVISION_CHUNK_SIZE": "4", "PROVISION_CONCURRENCY": "1",
                        "SHARD_LEASE_SECONDS": "6", "SHARD_START_SECONDS": "20", "SUPERVISE_SECONDS": "1",
                        "RETRY_BASE_SECONDS": "0.2"}.items():
        monkeypatch.setenv(f"BINDERY_{name}", value)
    make_world(cli, tmp_path, {"W001": DEVICES})
    cli.ok("bind", "W001", "--user", MEMBER)
    url = settings.resolved_database_url
    with serve(create_app(ReceiverAuth(basic="bindery:pw"), tmp_path / "recv.db")) as receiver:
        # 60 requests of 4 devices at 6 requests/s for all workers together: ~11 s of work
        cli.ok("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
               "--credentials", "bindery:pw", "--url", f"{receiver}/interop", "--quota", "6")
        workers = [start_worker(prefect_on_postgres, tmp_path / f"worker-{i}.log") for i in range(3)]
        erp = ErpClient(prefect_on_postgres["PREFECT_API_URL"], AUTH)
        try:
            parameters = {"bid": "W001", "user": ADMIN, "cloud_api": "lab", "shards": 3}
            run = erp.start("provision-batch", "provision-batch", parameters, message_id=uuid.uuid4().hex)
            deadline = time.monotonic() + 180
            victim = None
            while victim is None:
                assert time.monotonic() < deadline, "no shard was picked up by a worker without the parent run"
                parent = db.scalar(url, "SELECT holder FROM run_lease")
                holders = [str(h) for (h,) in db.rows(url, "SELECT holder FROM shard_lease WHERE holder IS NOT NULL "
                                                         "AND finished_at IS NULL")]
                done = int(db.scalar(url, "SELECT COUNT(*) FROM provisioning_record "  # type: ignore[arg-type]
                                          "WHERE status = 'provisioned'") or 0)
                if parent and holders and done >= 24:
                    parent_worker = parent_pid(pid_of(str(parent)))
                    by_worker = {parent_pid(pid_of(h)): pid_of(h) for h in holders if alive(pid_of(h))}
                    victim = next(((w, p) for w, p in by_worker.items()
                                   if w != parent_worker and w in {x.pid for x in workers}), None)
                time.sleep(0.2)
            worker_pid, shard_pid = victim
            # the worker and its flow runs (each in a process group of its own), as a lost host
            lost = process_tree(worker_pid)[1:]  # its flow runs: shards only (the parent's worker is spared)
            for pid in [worker_pid, *lost]:
                os.killpg(os.getpgid(pid), signal.SIGKILL)
            time.sleep(0.5)
            assert not alive(worker_pid) and not alive(shard_pid)
            done = erp.wait(run.id, timeout=240, every=1)
            logs = "".join((tmp_path / f"worker-{i}.log").read_text()[-1500:] for i in range(3))
            assert done.state == "COMPLETED", (done, logs)
            held = sorted(d["ref"] for d in httpx.get(f"{receiver}/devices").json())
            runs = httpx.post(prefect_on_postgres["PREFECT_API_URL"] + "/flow_runs/filter",
                              auth=tuple(AUTH.split(":")), json={}).json()  # type: ignore[arg-type]
        finally:
            erp.close()
            for worker in workers:
                stop_worker(worker)
    assert held == DEVICES, "every device in the target exactly once (the receiver keeps one per certificate)"
    assert db.scalar(url, "SELECT COUNT(*) FROM provisioning_record WHERE status = 'provisioned'") == len(DEVICES)
    assert db.scalar(url, "SELECT COUNT(*) FROM provisioning_record") == len(DEVICES)
    launches = dict(db.rows(url, "SELECT shard, launches FROM shard_lease ORDER BY shard"))  # type: ignore[arg-type]
    assert 1 <= len(lost) <= 2
    assert len(launches) == 3 and sorted(launches.values()) == [1] * (3 - len(lost)) + [2] * len(lost), \
        "each shard of the dead worker was taken over once, the others never"
    assert db.scalar(url, "SELECT COUNT(*) FROM shard_lease WHERE finished_at IS NULL") == 0
    shard_runs = [r for r in runs if "-shard-" in r["name"]]
    assert len(shard_runs) == 3 + len(lost) and all(r["parent_task_run_id"] for r in shard_runs), "subflows"
    assert sorted(r["state_type"] for r in shard_runs) == ["COMPLETED"] * 3 + ["CRASHED"] * len(lost)
