"""One quota across processes: three real processes take a target's pace through the database."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import pytest

from bench.pace_probe import busiest_second, run_probes
from bindery.clouds.base import Outcome
from bindery.db import get_engine
from bindery.provisioning.quota import DatabaseClock, DatabasePace
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


def test_the_database_clock_is_read_from_the_shortest_round_trip() -> None:
    clock = DatabaseClock()
    clock.observe(1100.001, sent=1000.0, received=1000.080)  # the answer took 80 ms to come back
    assert clock.local(1110.0) == pytest.approx(1010.0, abs=0.05)
    clock.observe(1105.001, sent=1005.0, received=1005.002)
    assert clock.local(1110.0) == pytest.approx(1010.0, abs=0.002), "the 2 ms round trip is believed"
    clock.observe(1106.100, sent=1006.0, received=1006.200)
    assert clock.local(1110.0) == pytest.approx(1010.0, abs=0.002), "a slower one does not move it"


def test_slots_keep_their_place_when_the_database_answers_late(settings: Settings, api_id: int) -> None:
    """Two processes' blocks interleave on the shared schedule; one process's answers now and then come
    back 80 ms late (a busy host). Its slots must stay where the database put them, not 80 ms later on
    top of the other process's."""
    from sqlalchemy import create_engine, event

    slow_engine = create_engine(settings.resolved_database_url)
    late = [False]

    @event.listens_for(slow_engine, "after_cursor_execute")
    def answer_late(*_: object) -> None:
        if late[0]:
            time.sleep(0.08)

    rate = 20.0
    slow, fast = DatabasePace(slow_engine, api_id, rate), DatabasePace(get_engine(settings), api_id, rate)
    slots = slow._reserve(2) + fast._reserve(2)  # the slow one's clock is read while it answers quickly
    late[0] = True
    slots += slow._reserve(2) + fast._reserve(2) + slow._reserve(2)
    slow_engine.dispose()
    slots.sort()
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert min(gaps) > 0.7 / rate, f"slots overlap: {[round(g, 3) for g in gaps]}"


def test_follow_up_calls_get_shared_slots_only_while_another_process_paces(
        settings: Settings, api_id: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Alone, a process's aws-iot follow-up calls follow its own registrations (no schedule rows); once
    another process's slots show up on the target's schedule, CreateThing, AttachPolicy and
    AttachThingPrincipal each take a slot of their own shared schedule, one per call."""
    from bench.aws_stub import RAISED_QUOTAS, Stub
    from bindery.clouds.aws_iot import AwsIotConnector
    from tests.bindery.clouds.test_aws_iot import devices
    from tests.support.servers import serve

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    here, other = (DatabasePace(get_engine(settings), api_id, 40.0) for _ in range(2))

    def schedules() -> dict[str, float]:
        rows = db.rows(settings.resolved_database_url,
                       f"SELECT api_call, next_at FROM quota_pace WHERE cloud_api_id = {api_id}")
        return {str(call): float(next_at) for call, next_at in rows}

    with serve(Stub(RAISED_QUOTAS, latency=0.01)) as url:
        connector = AwsIotConnector({"region": "us-east-1", "policy": "P", "endpoint_url": url}, timeout=5,
                                    pacer=here)
        alone = connector.provision(devices(5, "alone"))
        assert here.follower("CreateThing") is None and set(schedules()) == {""}
        other._reserve(1)  # another process takes a slot ...
        here._reserve(1)  # ... and this one's next block starts behind it
        shared = connector.provision(devices(5, "shared"))
        connector.close()
    assert all(r.outcome is Outcome.PROVISIONED for r in alone + shared)
    after = schedules()
    assert set(after) == {"", "CreateThing", "AttachPolicy", "AttachThingPrincipal"}


def test_busiest_second_counts_a_sliding_window() -> None:
    assert busiest_second([0.0, 0.5, 0.99, 1.0, 1.2, 1.6]) == 4
    assert busiest_second([]) == 0
