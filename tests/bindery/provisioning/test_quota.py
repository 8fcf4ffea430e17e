"""One quota across processes: three real processes take a target's pace through the database."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bench.pace_probe import busiest_second, run_probes
from bindery.db import get_engine
from bindery.provisioning.quota import DatabasePace
from bindery.provisioning.ratelimit import DEFAULT_PACE
from bindery.settings import Settings
from tests.conftest import Cli
from tests.support import db
from tests.support.world import ADMIN, make_world

QUOTA, SECONDS = 40.0, 4.0
RATE = QUOTA * DEFAULT_PACE  # the pace Bindery keeps for a quota


@pytest.fixture
def api_id(cli: Cli, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    make_world(cli, tmp_path, {})
    cli.ok("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
           "--credentials", "bindery:pw", "--url", "http://127.0.0.1:9/interop", "--no-check")
    return int(db.scalar(settings.resolved_database_url, "SELECT id FROM cloud_api WHERE name = 'lab'"))  # type: ignore[arg-type]


def test_three_processes_together_keep_to_the_quota(settings: Settings, api_id: int) -> None:
    stamps = run_probes(processes=3, api_id=api_id, rate=RATE, seconds=SECONDS, threads=6, env=os.environ.copy())
    assert busiest_second(stamps) <= QUOTA, "no one-second window above the quota"
    assert len(stamps) >= 0.85 * RATE * SECONDS, f"close to the quota: {len(stamps) / SECONDS:.1f}/s"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_per_process_buckets_would_not(settings: Settings, api_id: int) -> None:
    """The check above can fail: three per-process buckets together run at three times the quota."""
    stamps = run_probes(processes=3, api_id=api_id, rate=RATE, seconds=SECONDS, threads=6, sharing="process",
                        env=os.environ.copy())
    assert busiest_second(stamps) > 2 * QUOTA


def test_a_pause_holds_back_every_process(settings: Settings, api_id: int) -> None:
    one, other = (DatabasePace(get_engine(settings), api_id, 20.0) for _ in range(2))
    one.acquire()
    one.pause(0.6)
    started = time.monotonic()
    other.acquire()
    assert time.monotonic() - started >= 0.55


def test_busiest_second_counts_a_sliding_window() -> None:
    assert busiest_second([0.0, 0.5, 0.99, 1.0, 1.2, 1.6]) == 4
    assert busiest_second([]) == 0
