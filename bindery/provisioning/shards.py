"""Shards of one provisioning run: disjoint Device.id ranges, each claimed by one flow run at a time.

The parent run cuts the devices still to do into ranges (``cut``) and launches a flow run per
shard. A shard run claims its range with a lease (``claim``), renews it from a keeper thread while it
works, and marks it finished only after every device of the range was tried. A shard whose lease
expired unfinished, or whose flow run ended without finishing it, is launched again (``to_relaunch``)
and the new run takes the claim over. Records are still written only after the target confirmed, and
connectors are idempotent, so a takeover neither repeats nor skips a device.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, delete, or_, update
from sqlmodel import Session, col, select

from bindery.db import get_engine
from bindery.models.provisioning import ProvisioningRecord, ShardLease
from bindery.provisioning import records
from bindery.settings import Settings


@dataclass(frozen=True)
class ShardState:
    """What the parent needs to decide about a shard (a plain copy, no session attached)."""

    id: int
    shard: int
    first: int
    last: int
    holder: str | None
    expires_at: datetime | None
    flow_run_id: str | None
    launches: int
    finished: bool
    already_present: int


def _state(row: ShardLease) -> ShardState:
    assert row.id is not None
    return ShardState(row.id, row.shard, row.first_device_id, row.last_device_id, row.holder, row.expires_at,
                      row.flow_run_id, row.launches, row.finished_at is not None, row.already_present)


def _of_run(batch_id: int, api_id: int) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return (col(ShardLease.batch_id) == batch_id, col(ShardLease.cloud_api_id) == api_id)


def states(*, session: Session, batch_id: int, api_id: int) -> list[ShardState]:
    rows = session.exec(select(ShardLease).where(*_of_run(batch_id, api_id)).order_by(col(ShardLease.shard))).all()
    return [_state(row) for row in rows]


def state_of(*, session: Session, shard_id: int) -> ShardState | None:
    row = session.get(ShardLease, shard_id)
    return _state(row) if row is not None else None


def cut(*, session: Session, batch_id: int, api_id: int, shards: int) -> list[ShardState]:
    """The shards of a run: the unfinished ones of an earlier run if any (their runs may still be
    alive, so they are never cut anew), else the devices still to do in ``shards`` equal ranges."""
    existing = states(session=session, batch_id=batch_id, api_id=api_id)
    if any(not s.finished for s in existing):
        return existing
    session.execute(delete(ShardLease).where(*_of_run(batch_id, api_id)))
    ids = session.exec(select(ProvisioningRecord.device_id).where(
        col(ProvisioningRecord.batch_id) == batch_id, col(ProvisioningRecord.cloud_api_id) == api_id,
        col(ProvisioningRecord.status) != records.PROVISIONED).order_by(col(ProvisioningRecord.device_id))).all()
    count = max(1, min(shards, len(ids)))
    size = -(-len(ids) // count) if ids else 0
    for number, start in enumerate(range(0, len(ids), size) if ids else []):
        session.add(ShardLease(batch_id=batch_id, cloud_api_id=api_id, shard=number, first_device_id=ids[start],
                               last_device_id=ids[min(start + size, len(ids)) - 1]))
    session.flush()
    return states(session=session, batch_id=batch_id, api_id=api_id)


def claim(*, session: Session, shard_id: int, holder: str, seconds: float) -> bool:
    """Take the shard if it is unfinished and free, expired, or already ours."""
    now = datetime.now(UTC)
    taken = session.execute(update(ShardLease).where(
        col(ShardLease.id) == shard_id, col(ShardLease.finished_at).is_(None),
        or_(col(ShardLease.holder).is_(None), col(ShardLease.holder) == holder, col(ShardLease.expires_at) < now))
        .values(holder=holder, expires_at=now + timedelta(seconds=seconds)))
    return bool(taken.rowcount)  # type: ignore[attr-defined]


def renew(*, session: Session, shard_id: int, holder: str, seconds: float) -> bool:
    """Extend our claim; False when it was taken over (then stop working on the shard)."""
    renewed = session.execute(update(ShardLease).where(
        col(ShardLease.id) == shard_id, col(ShardLease.holder) == holder, col(ShardLease.finished_at).is_(None))
        .values(expires_at=datetime.now(UTC) + timedelta(seconds=seconds)))
    return bool(renewed.rowcount)  # type: ignore[attr-defined]


def finish(*, session: Session, shard_id: int, holder: str) -> bool:
    done = session.execute(update(ShardLease).where(col(ShardLease.id) == shard_id, col(ShardLease.holder) == holder)
                           .values(finished_at=datetime.now(UTC), holder=None, expires_at=None))
    return bool(done.rowcount)  # type: ignore[attr-defined]


def release(*, session: Session, shard_id: int, holder: str) -> None:
    """Give an unfinished shard back at once (a run that stops cleanly), so it is relaunched without
    waiting for the expiry."""
    session.execute(update(ShardLease).where(col(ShardLease.id) == shard_id, col(ShardLease.holder) == holder)
                    .values(holder=None, expires_at=None))


def expire(*, session: Session, shard_id: int, holder: str | None) -> None:
    """Drop an expired claim before relaunching, so the old run's renewals fail and it stops."""
    if holder is not None:
        session.execute(update(ShardLease).where(col(ShardLease.id) == shard_id, col(ShardLease.holder) == holder)
                        .values(holder=None, expires_at=None))


def launched(*, session: Session, shard_id: int, flow_run_id: str) -> None:
    session.execute(update(ShardLease).where(col(ShardLease.id) == shard_id)
                    .values(flow_run_id=flow_run_id, launches=ShardLease.launches + 1))


def count_already_present(*, session: Session, shard_id: int, count: int) -> None:
    if count:
        session.execute(update(ShardLease).where(col(ShardLease.id) == shard_id)
                        .values(already_present=ShardLease.already_present + count))


def holds(*, session: Session, shard_id: int, holder: str) -> bool:
    row = session.get(ShardLease, shard_id)
    return row is not None and row.holder == holder and row.finished_at is None


@dataclass(frozen=True)
class RunSeen:
    """A shard run as its orchestrator sees it: over, or taken by a worker since when (None while queued)."""

    ended: bool
    taken_since: datetime | None = None


def to_relaunch(shard: ShardState, *, run: RunSeen | None, start_seconds: float, now: datetime | None = None) -> bool:
    """An unfinished shard needs a new run when its claim expired (its worker died or hangs), when its
    run ended without holding it (crashed before claiming, or gave it back), or when a worker took its
    run but it has not claimed the shard within ``start_seconds`` (the worker died as it started)."""
    if shard.finished:
        return False
    now = now or datetime.now(UTC)
    if shard.holder is not None:
        return shard.expires_at is not None and shard.expires_at < now
    if shard.flow_run_id is None:
        return True
    if run is None:
        return False
    return run.ended or (run.taken_since is not None and (now - run.taken_since).total_seconds() > start_seconds)


class LeaseKeeper:
    """Renews a shard's claim from a thread every third of the lease; ``lost`` is set when it was
    taken over, and the shard's chunks stop."""

    def __init__(self, settings: Settings, shard_id: int, holder: str):
        self.settings = settings
        self.shard_id = shard_id
        self.holder = holder
        self.lost = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"shard-lease-{shard_id}", daemon=True)

    def _run(self) -> None:
        seconds = self.settings.shard_lease_seconds
        while not self.stopped.wait(seconds / 3):
            with Session(get_engine(self.settings)) as session:
                ok = renew(session=session, shard_id=self.shard_id, holder=self.holder, seconds=seconds)
                session.commit()
            if not ok:
                self.lost.set()
                return

    @contextmanager
    def running(self) -> Iterator[LeaseKeeper]:
        self.thread.start()
        try:
            yield self
        finally:
            self.stopped.set()
            self.thread.join()
