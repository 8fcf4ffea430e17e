"""Recovery's decisions (which crashed runs start again, how often, after how long), what it and a rerun
do with the dead run's lease, history row and the devices it was on, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from bindery import db as database
from bindery import runs
from bindery.models.catalog import Batch, Device
from bindery.models.clouds import CloudApi
from bindery.models.provisioning import ProvisioningRecord, RunLease, ShardLease
from bindery.models.runs import Run
from bindery.provisioning import lease, records, run, status
from bindery.recovery import CrashedRun, attempt_of, close_crashed, decide, replaced_by_tags
from bindery.settings import Settings
from tests.bindery.provisioning.test_provision import add_receiver
from tests.conftest import Cli
from tests.support.world import ADMIN, make_world

DEAD_FLOW_RUN = "0b5e55ed-0000-4000-8000-00000000dead"
OTHER_HOST = f"host-that-burned-down:4242:0badc0de:{DEAD_FLOW_RUN}"


def crashed(flow: str = "provision-batch", tags: tuple[str, ...] = (), **changes: object) -> CrashedRun:
    fields: dict[str, object] = {"flow_run_id": DEAD_FLOW_RUN, "flow_name": flow, "state_type": "CRASHED",
                                 "deployment_id": "d-1", "parameters": {"bid": "R001", "cloud_api": "lab"},
                                 "tags": tags, **changes}
    return CrashedRun(**fields)  # type: ignore[arg-type]


def test_a_crashed_provisioning_run_starts_again_with_backoff_until_the_limit() -> None:
    settings = Settings(crash_restarts=3, crash_backoff_seconds=10)
    first = decide(crashed(tags=("bindery:console",)), settings)
    assert first is not None and first.restart and first.delay == 10
    assert set(first.tags) == {"bindery:console", "bindery:attempt:2", f"bindery:replaces:{DEAD_FLOW_RUN}"}
    assert attempt_of(first.tags) == 2 and replaced_by_tags(first.tags) == DEAD_FLOW_RUN
    third = decide(crashed(tags=("bindery:attempt:3", "bindery:replaces:x")), settings)
    assert third is not None and third.restart and third.delay == 40
    assert sorted(third.tags) == ["bindery:attempt:4", f"bindery:replaces:{DEAD_FLOW_RUN}"]
    last = decide(crashed(tags=("bindery:attempt:4",)), settings)
    assert last is not None and not last.restart and "crashed 4 times" in last.reason


@pytest.mark.parametrize("flow", ["provision-batch", "provision-shard", "deprovision-batch", "bind-and-provision"])
def test_every_provisioning_flow_is_recovered(flow: str) -> None:
    assert decide(crashed(flow), Settings()) is not None


def test_what_recovery_leaves_alone() -> None:
    settings = Settings()
    assert decide(crashed("reconcile"), settings) is None, "the next night's reconcile does its work"
    assert decide(crashed(state_type="FAILED"), settings) is None, "a failed run ended well enough to say so"
    assert decide(crashed(deployment_id=None), settings) is None, "a flow called directly has no deployment"
    assert decide(crashed("provision-shard", has_parent=True), settings) is None, "its supervisor relaunches it"
    assert decide(crashed(tags=("bindery:attempt:1",)), Settings(crash_restarts=0)) is not None
    assert not decide(crashed(), Settings(crash_restarts=0)).restart  # type: ignore[union-attr]


@pytest.fixture
def world(cli: Cli, tmp_path: Path, receiver: str, settings: Settings,
          monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    monkeypatch.setenv("BINDERY_LEASE_WAIT_SECONDS", "0.3")
    make_world(cli, tmp_path, {"R001": [f"r-{i}" for i in range(5)]})
    cli.ok("bind", "R001", "--user", ADMIN)
    add_receiver(cli, "lab", receiver)
    with Session(database.get_engine(settings)) as session:
        batch = session.exec(select(Batch).where(Batch.bid == "R001")).one()
        api = session.exec(select(CloudApi).where(CloudApi.name == "lab")).one()
        assert batch.id is not None and api.id is not None
        lease.acquire(session=session, batch_id=batch.id, api_id=api.id, holder=OTHER_HOST, seconds=3600, wait=0,
                      what="R001")
        runs.begin(session=session, kind=runs.PROVISION, batch_id=batch.id, bid="R001", api_id=api.id,
                   api_name="lab", started_by=ADMIN, origin=runs.Origin("prefect-api", DEAD_FLOW_RUN))
        session.commit()
        return batch.id, api.id


def test_a_lease_on_another_host_is_taken_over_once_prefect_says_its_run_is_over(
        world: tuple[int, int], settings: Settings) -> None:
    batch_id, api_id = world
    with Session(database.get_engine(settings)) as session:
        with pytest.raises(lease.Busy):
            lease.acquire(session=session, batch_id=batch_id, api_id=api_id, holder=lease.new_holder(),
                          seconds=60, wait=0, what="R001", gone=lambda flow_run: False)
        mine = lease.new_holder("f-2")
        lease.acquire(session=session, batch_id=batch_id, api_id=api_id, holder=mine, seconds=60, wait=0,
                      what="R001", gone=lambda flow_run: flow_run == DEAD_FLOW_RUN)
        assert lease.flow_run_of(mine) == "f-2" and lease.flow_run_of(OTHER_HOST) == DEAD_FLOW_RUN


def test_recovery_closes_the_crashed_row_and_frees_its_lease_and_the_rerun_names_it(
        world: tuple[int, int], settings: Settings) -> None:
    closed = close_crashed(settings, crashed())
    with Session(database.get_engine(settings)) as session:
        dead = session.exec(select(Run)).one()
        assert closed == [dead.id] and (dead.status, dead.message) == ("failed", "crashed: process lost")
        assert dead.finished_at is not None
    plan = run.plan_run(settings=settings, user=ADMIN, bid="R001", cloud_api="lab",
                        origin=runs.Origin("recovery", "f-3", replaces=DEAD_FLOW_RUN))
    run.finish_run(settings=settings, plan=plan, results=[])
    with Session(database.get_engine(settings)) as session:
        rerun = session.get(Run, plan.run_id)
        assert rerun is not None and (rerun.started_via, rerun.replaces_run_id) == ("recovery", dead.id)


def test_a_rerun_closes_a_row_prefect_says_crashed_as_crashed(world: tuple[int, int], settings: Settings) -> None:
    batch_id, api_id = world
    with Session(database.get_engine(settings)) as session:
        lease.release(session=session, batch_id=batch_id, api_id=api_id, holder=OTHER_HOST)
        replaced = runs.close_abandoned(session=session, kind=runs.PROVISION, batch_id=batch_id, api_id=api_id,
                                        crashed=lambda flow_run: flow_run == DEAD_FLOW_RUN)
        session.commit()
        dead = session.exec(select(Run)).one()
        assert replaced == dead.id and dead.message == runs.CRASHED


def tried_by_the_dead_run(settings: Settings, batch_id: int, api_id: int) -> dict[str, int]:
    """Records for R001's devices; the dead run marked r-0 to r-3 tried, r-1 then failed transiently,
    r-4 it never reached. Returns the devices' primary keys by device id."""
    with Session(database.get_engine(settings)) as session:
        records.ensure_records(session=session, batch_id=batch_id, api_id=api_id)
        pks = {d.device_id: int(d.id or 0) for d in session.exec(select(Device).where(Device.batch_id == batch_id))}
        records.mark_attempt(session=session, api_id=api_id, device_pks=[pks[f"r-{i}"] for i in range(4)])
        records.record_chunk_error(session=session, api_id=api_id, device_pks=[pks["r-1"]],
                                   error="connection refused (ConnectError)", error_class="transient")
        session.commit()
    return pks


def record_of(settings: Settings) -> dict[str, tuple[str, str | None, int]]:
    with Session(database.get_engine(settings)) as session:
        rows = session.exec(select(Device.device_id, ProvisioningRecord).join(
            ProvisioningRecord, col(ProvisioningRecord.device_id) == col(Device.id))).all()
        return {device_id: (r.status, r.last_error, r.attempts) for device_id, r in rows}


def test_recovery_settles_what_the_crashed_run_tried_and_spares_a_live_shards_devices(
        world: tuple[int, int], settings: Settings) -> None:
    batch_id, api_id = world
    pks = tried_by_the_dead_run(settings, batch_id, api_id)
    with Session(database.get_engine(settings)) as session:  # a shard run, alive, still works on r-3
        session.add(ShardLease(batch_id=batch_id, cloud_api_id=api_id, shard=1, first_device_id=pks["r-3"],
                               last_device_id=pks["r-3"], holder=lease.new_holder("f-shard"),
                               expires_at=datetime.now(UTC) + timedelta(minutes=5)))
        session.commit()
    close_crashed(settings, crashed())
    assert record_of(settings) == {
        "r-0": ("failed", status.LOST, 1), "r-2": ("failed", status.LOST, 1),  # in flight when it died
        "r-1": ("failed", "connection refused (ConnectError)", 1),  # its own error stays
        "r-3": ("pending", None, 1),  # the live shard's
        "r-4": ("pending", None, 0)}  # never tried
    with Session(database.get_engine(settings)) as session:
        assert session.exec(select(RunLease)).all() == [], "recovery's own lease is gone again"
        assert status.reasons(session=session, batch_id=batch_id, api_id=api_id)[0] == status.Reason(status.LOST, 2)


def test_recovery_leaves_the_devices_to_a_live_run_that_holds_the_lease(
        world: tuple[int, int], settings: Settings) -> None:
    batch_id, api_id = world
    tried_by_the_dead_run(settings, batch_id, api_id)
    live = lease.new_holder("f-rerun")  # a rerun took the lease over already: it is on the devices
    with Session(database.get_engine(settings)) as session:
        lease.acquire(session=session, batch_id=batch_id, api_id=api_id, holder=live, seconds=60, wait=0,
                      what="R001", gone=lambda flow_run: flow_run == DEAD_FLOW_RUN)
    before = record_of(settings)
    try:
        closed = close_crashed(settings, crashed())
        assert closed and record_of(settings) == before
        assert {status for status, _error, _attempts in before.values()} == {"pending"}
        with Session(database.get_engine(settings)) as session:
            assert [row.holder for row in session.exec(select(RunLease))] == [live]
    finally:
        lease.forget(live)
