"""Sharded runs without Prefect: shard runs on threads, one that dies mid-shard, takeover after expiry."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import Session, col

from bindery.clouds.connectors import connector_for
from bindery.db import get_engine, session_scope
from bindery.models.clouds import CloudApi
from bindery.models.provisioning import ShardLease
from bindery.provisioning import records, shards
from bindery.provisioning.run import ChunkResult, RunPlan, finish_run, run_chunk_with_retries
from bindery.provisioning.sharded import already_present, finish_shard, start_shard, start_sharded, supervise
from bindery.settings import Settings, get_settings
from tests.conftest import Cli
from tests.support import db
from tests.support.servers import held
from tests.support.world import ADMIN, MEMBER, make_world

DEVICES = [f"s-{i:03d}" for i in range(30)]


@pytest.fixture
def world(cli: Cli, tmp_path: Path, receiver: str, monkeypatch: pytest.MonkeyPatch) -> Cli:
    for name, value in {"ALLOW_PRIVATE_TARGETS": "1", "PROVISION_CHUNK_SIZE": "4", "RETRY_BASE_SECONDS": "0.05",
                        "SHARD_LEASE_SECONDS": "60", "SUPERVISE_SECONDS": "0.1"}.items():
        monkeypatch.setenv(f"BINDERY_{name}", value)
    make_world(cli, tmp_path, {"S001": DEVICES})
    cli.ok("bind", "S001", "--user", MEMBER)
    cli.ok("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
           "--credentials", "bindery:pw", "--url", f"{receiver}/interop", "--quota", "1000")
    return cli


def expire_now(settings: Settings, plan: RunPlan) -> None:
    """The claim of a shard run that stopped renewing, as it is once its lease seconds have passed."""
    with session_scope(settings) as session:
        session.execute(update(ShardLease).where(col(ShardLease.id) == plan.shard_id,
                                                 col(ShardLease.holder) == plan.holder)
                        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))


class ThreadLauncher:
    """Shard runs on threads. A shard in ``dying`` dies on its first launch as a killed worker does:
    it records one chunk, delivers the next to the target without recording it, then stops renewing,
    and its run never ends on its own (as a flow run of a killed worker stays Running). Its claim then
    runs out at once (``expire_now``): the live shards' claims are long, so load never expires them."""

    def __init__(self, dying: set[int] = frozenset()):  # type: ignore[assignment]
        self.dying = set(dying)
        self.runs: dict[str, threading.Thread] = {}
        self.died: set[str] = set()
        self.abandoned: list[str] = []
        self.launched: list[int] = []

    def launch(self, plan: RunPlan, shard: shards.ShardState) -> str:
        run_id = uuid.uuid4().hex
        dies = shard.shard in self.dying
        self.dying.discard(shard.shard)
        if dies:
            self.died.add(run_id)
        self.runs[run_id] = threading.Thread(target=self._run, args=(plan, shard.shard, dies))
        self.runs[run_id].start()
        self.launched.append(shard.shard)
        return run_id

    def _run(self, parent: RunPlan, number: int, dies: bool) -> None:
        settings = get_settings()
        plan = start_shard(settings=settings, user=parent.user, bid=parent.bid, cloud_api=parent.api_name,
                           shard=number)
        if plan is None:
            return
        if dies:
            run_chunk_with_retries(settings=settings, plan=plan, index=0)
            with Session(get_engine(settings)) as session:
                devices = records.chunk_devices(session=session, batch_id=plan.batch_id, api_id=plan.api_id,
                                                bounds=plan.chunks[1])
                connector = connector_for(session=session, settings=settings, api=session.get(CloudApi, plan.api_id))  # type: ignore[arg-type]
            connector.provision([cert for _, cert in devices])
            expire_now(settings, plan)
            return
        assert plan.shard_id is not None
        keeper = shards.LeaseKeeper(settings, plan.shard_id, plan.holder)
        results: list[ChunkResult] = []
        with keeper.running():
            for index in range(len(plan.chunks)):
                if keeper.lost.is_set():
                    break
                results.append(run_chunk_with_retries(settings=settings, plan=plan, index=index))
        finish_shard(settings=settings, plan=plan, results=results)

    def seen(self, run_id: str) -> shards.RunSeen:
        ended = run_id in self.abandoned or (run_id not in self.died and not self.runs[run_id].is_alive())
        return shards.RunSeen(ended=ended, taken_since=None if ended else datetime.now(UTC))

    def abandon(self, run_id: str, reason: str) -> None:
        assert "another run takes the shard over" in reason
        self.abandoned.append(run_id)

    def join(self) -> None:
        for thread in self.runs.values():
            thread.join(timeout=60)


def provisioned(settings: Settings) -> int:
    return int(db.scalar(settings.resolved_database_url,  # type: ignore[arg-type]
                         "SELECT COUNT(*) FROM provisioning_record WHERE status = 'provisioned'") or 0)


def test_a_dead_shard_is_taken_over_and_every_device_lands_once(world: Cli, settings: Settings,
                                                                 receiver: str) -> None:
    plan = start_sharded(settings=get_settings(), user=ADMIN, bid="S001", cloud_api="lab", shard_count=3)
    with session_scope(settings) as session:
        cut = shards.states(session=session, batch_id=plan.batch_id, api_id=plan.api_id)
    assert [s.shard for s in cut] == [0, 1, 2]
    assert all(a.last < b.first for a, b in pairwise(cut)), "ranges are disjoint and ordered"
    launcher = ThreadLauncher(dying={1})
    supervise(settings=get_settings(), plan=plan, launcher=launcher)
    launcher.join()
    report = finish_run(settings=get_settings(), plan=plan,
                        results=[ChunkResult(-1, already_present=already_present(settings=get_settings(), plan=plan))])
    assert report.complete and report.provisioned == len(DEVICES)
    assert held(receiver) == DEVICES and provisioned(settings) == len(DEVICES)
    assert sorted(launcher.launched) == [0, 1, 1, 2], "only the dead shard was launched again"
    assert len(launcher.abandoned) == 1 and launcher.abandoned[0] in launcher.died
    counts = db.rows(settings.resolved_database_url, "SELECT shard, launches FROM shard_lease ORDER BY shard")
    assert counts == [(0, 1), (1, 2), (2, 1)]
    assert db.scalar(settings.resolved_database_url, "SELECT COUNT(*) FROM run_lease") == 0


class LateLauncher(ThreadLauncher):
    """Each shard run does all its work between the supervisor's read of the shards and its question
    about the run: the run is over when asked, the supervisor's copy still says not started."""

    def __init__(self) -> None:
        super().__init__()
        self.parent: dict[str, tuple[RunPlan, int]] = {}

    def launch(self, plan: RunPlan, shard: shards.ShardState) -> str:
        run_id = uuid.uuid4().hex
        self.parent[run_id] = (plan, shard.shard)
        self.launched.append(shard.shard)
        return run_id

    def seen(self, run_id: str) -> shards.RunSeen:
        if run_id in self.parent:
            self._run(*self.parent.pop(run_id), dies=False)
        return shards.RunSeen(ended=True)


def test_a_shard_finished_since_the_supervisor_read_it_is_not_launched_again(world: Cli, settings: Settings,
                                                                            receiver: str) -> None:
    plan = start_sharded(settings=get_settings(), user=ADMIN, bid="S001", cloud_api="lab", shard_count=2)
    launcher = LateLauncher()
    supervise(settings=get_settings(), plan=plan, launcher=launcher)
    assert sorted(launcher.launched) == [0, 1] and held(receiver) == DEVICES


def test_a_held_shard_is_not_claimed_twice_and_a_rerun_keeps_unfinished_shards(world: Cli, settings: Settings) -> None:
    plan = start_sharded(settings=get_settings(), user=ADMIN, bid="S001", cloud_api="lab", shard_count=2)
    first = start_shard(settings=get_settings(), user=ADMIN, bid="S001", cloud_api="lab", shard=0)
    assert first is not None and first.chunks
    assert start_shard(settings=get_settings(), user=ADMIN, bid="S001", cloud_api="lab", shard=0) is None
    finish_run(settings=get_settings(), plan=plan, results=[])  # the parent dies; its shards stay
    again = start_sharded(settings=get_settings(), user=ADMIN, bid="S001", cloud_api="lab", shard_count=5)
    with session_scope(settings) as session:
        kept = shards.states(session=session, batch_id=again.batch_id, api_id=again.api_id)
    assert len(kept) == 2 and kept[0].holder == first.holder, "unfinished shards are never cut anew"


def test_a_shard_that_keeps_failing_is_given_up_after_its_launches(world: Cli, settings: Settings,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_PROVISION_RETRIES", "0")
    monkeypatch.setenv("BINDERY_SHARD_LAUNCHES", "2")
    world.ok("cloud-api", "add", "down", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
             "--credentials", "bindery:pw", "--url", "http://127.0.0.1:9/interop", "--no-check")
    plan = start_sharded(settings=get_settings(), user=ADMIN, bid="S001", cloud_api="down", shard_count=2)
    launcher = ThreadLauncher()
    supervise(settings=get_settings(), plan=plan, launcher=launcher)
    launcher.join()
    report = finish_run(settings=get_settings(), plan=plan, results=[])
    assert sorted(launcher.launched) == [0, 0, 1, 1]
    assert not report.complete and report.failed == len(DEVICES)


def test_relaunch_rule() -> None:
    now = datetime.now(UTC)
    base = shards.ShardState(1, 0, 1, 9, None, None, None, 0, False, 0)

    def relaunch(shard: shards.ShardState, run: shards.RunSeen | None = None) -> bool:
        return shards.to_relaunch(shard, run=run, start_seconds=30, now=now)

    assert relaunch(base), "never launched"
    launched = replace(base, flow_run_id="r1")
    assert not relaunch(launched, shards.RunSeen(ended=False)), "queued: wait for a worker"
    assert not relaunch(launched, shards.RunSeen(False, now - timedelta(seconds=10))), "starting up"
    assert relaunch(launched, shards.RunSeen(False, now - timedelta(seconds=31))), "taken, never claimed: lost"
    assert relaunch(launched, shards.RunSeen(ended=True)), "ended without claiming or gave it back"
    live = replace(launched, holder="h", expires_at=now + timedelta(seconds=5))
    assert not relaunch(live)
    assert relaunch(replace(live, expires_at=now - timedelta(seconds=1))), "claim expired"
    assert not relaunch(replace(base, finished=True), shards.RunSeen(ended=True))
