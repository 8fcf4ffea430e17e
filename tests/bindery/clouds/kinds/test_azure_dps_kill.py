"""kill -9 in the middle of a run into DPS, between the service's enrollment and its answer, then a rerun:
every device enrolled once, the records equal what DPS holds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bindery.reels.demo import write_demo_reel
from bindery.settings import Settings
from tests.conftest import Cli
from tests.support import db
from tests.support.dps import running_dps
from tests.support.world import ADMIN, make_world

DEVICES = 40


def provisioned(settings: Settings) -> int:
    return int(str(db.scalar(settings.resolved_database_url,
                             "SELECT COUNT(*) FROM provisioning_record WHERE status = 'provisioned'") or 0))


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_kill_between_enrollment_and_answer_then_rerun(cli: Cli, tmp_path: Path, settings: Settings,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")  # the stand-in is on loopback
    monkeypatch.setenv("BINDERY_PROVISION_CHUNK_SIZE", "10")
    monkeypatch.setenv("BINDERY_PROVISION_CONCURRENCY", "1")
    make_world(cli, tmp_path, {})
    demo = write_demo_reel(out=tmp_path / "reel", bid="DPSK-001", devices=DEVICES, fmt="bindery-csv",
                           public_url="http://x")
    cli.ok("trust", "add", *demo.ca_files)
    cli.ok("reel", "import", demo.reel)
    cli.ok("bind", "DPSK-001", "--user", ADMIN)
    with running_dps(tmp_path / "tls", answer_delay=0.5) as (dps, url):  # enrolled, answered 0.5 s later
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "tls" / "ca.pem"))
        monkeypatch.setenv("DPS_CS", dps.connection_string())
        cli.ok("cloud-api", "add", "dps", "--user", ADMIN, "--kind", "azure-dps", "--connection-string",
               "env:DPS_CS", "--endpoint-url", url)
        log = (tmp_path / "run.log").open("wb")
        run = subprocess.Popen([sys.executable, "-m", "bindery.cli", "provision", "DPSK-001", "--cloud-api", "dps",
                                "--user", ADMIN], stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
        deadline = time.monotonic() + 60
        while not (provisioned(settings) >= 10 and len(dps.enrollments) > provisioned(settings)):
            assert run.poll() is None, (tmp_path / "run.log").read_text()
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.02)
        os.kill(run.pid, signal.SIGKILL)  # DPS holds enrollments whose answer the run never read
        run.wait()
        before = provisioned(settings)
        assert 10 <= before < len(dps.enrollments) < DEVICES + 1
        rerun = cli.ok("provision", "DPSK-001", "--cloud-api", "dps", "--user", ADMIN)
    assert f"{DEVICES} of {DEVICES} devices provisioned" in rerun.out
    assert len(dps.created_at) == DEVICES == len(dps.enrollments), "every enrollment created once"
    read_back = [c for c in dps.calls if c.startswith("GET /enrollments/")]
    assert len(read_back) == len(set(read_back)) >= 1, "the orphans' 409201 read back, each once"
    query = ("SELECT d.subject_cn FROM provisioning_record r JOIN device d ON d.id = r.device_id "
             "WHERE r.status = 'provisioned'")
    recorded = sorted(str(r[0]).lower() for r in db.rows(settings.resolved_database_url, query))
    assert recorded == sorted(dps.enrollments), "records equal what DPS holds"
