"""kill -9 in the middle of a provisioning run, then a rerun: every device once, records = target."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bindery.settings import Settings
from tests.conftest import Cli
from tests.support import db
from tests.support.flaky import FaultLog, create_flaky_proxy
from tests.support.servers import serve
from tests.support.world import ADMIN, MEMBER, make_world

DEVICES = [f"k-{i:03d}" for i in range(40)]


def provisioned(settings: Settings) -> int:
    return int(db.scalar(settings.resolved_database_url,  # type: ignore[arg-type]
                         "SELECT COUNT(*) FROM provisioning_record WHERE status = 'provisioned'") or 0)


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_kill_mid_run_then_rerun(cli: Cli, tmp_path: Path, settings: Settings, receiver: str,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    monkeypatch.setenv("BINDERY_PROVISION_CHUNK_SIZE", "4")
    monkeypatch.setenv("BINDERY_PROVISION_CONCURRENCY", "1")
    make_world(cli, tmp_path, {"K001": DEVICES})
    cli.ok("bind", "K001", "--user", MEMBER)
    # every call is stored by the receiver, then answered 0.4 s later; the kill lands on a call held between the two
    slow = FaultLog(rate=1.0)
    slow.random.choice = lambda faults: "timeout-after-forward"  # type: ignore[method-assign]
    with serve(create_flaky_proxy(receiver, slow, timeout_delay=0.4)) as proxy:
        cli.ok("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
               "--credentials", "bindery:pw", "--url", f"{proxy}/interop", "--quota", "1000", "--no-check")
        log = (tmp_path / "run.log").open("wb")
        run = subprocess.Popen([sys.executable, "-m", "bindery.cli", "provision", "K001", "--cloud-api", "lab",
                                "--user", ADMIN], stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
        deadline = time.monotonic() + 60
        while provisioned(settings) < 12:
            assert run.poll() is None, (tmp_path / "run.log").read_text()
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.05)
        slow.answering.clear()  # the next call that reaches the receiver is stored there, never answered
        try:
            assert slow.holding.wait(60), "no call reached the target"
            os.kill(run.pid, signal.SIGKILL)
            run.wait()
        finally:
            slow.answering.set()
        before = provisioned(settings)
        stored = {d["ref"] for d in httpx.get(f"{receiver}/devices").json()}
        assert 12 <= before < len(DEVICES)
        assert len(stored) > before, "the target holds devices the records do not know yet"
        assert db.scalar(settings.resolved_database_url, "SELECT COUNT(*) FROM run_lease") == 1
        rerun = cli.ok("provision", "K001", "--cloud-api", "lab", "--user", ADMIN)
    assert "40 of 40 devices provisioned" in rerun.out
    held = sorted(d["ref"] for d in httpx.get(f"{receiver}/devices").json())
    assert held == DEVICES, "every device exactly once in the target"
    query = ("SELECT d.device_id FROM provisioning_record r JOIN device d ON d.id = r.device_id "
             "WHERE r.status = 'provisioned' ORDER BY d.device_id")
    recorded = [r[0] for r in db.rows(settings.resolved_database_url, query)]
    assert recorded == held, "records equal what the target holds"
    assert db.scalar(settings.resolved_database_url, "SELECT COUNT(*) FROM run_lease") == 0
