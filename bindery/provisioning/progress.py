"""Work in progress, read from Bindery's own records: the run history's open rows, the provisioning
records of their batch and target, and the run leases. So a run shows the same whether the CLI, the
console, an ERP system or a Prefect schedule started it, and whichever process runs it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from bindery import runs
from bindery.access import Action, Actor, owned_batch
from bindery.models.provisioning import ProvisioningRecord, RunLease
from bindery.models.runs import Run, RunPublic
from bindery.models.types import utcnow
from bindery.provisioning import records

WORK = (runs.PROVISION, runs.DEPROVISION)


@dataclass(frozen=True)
class RunProgress:
    """A (de)provisioning run that has not closed its record, and how far its batch and target got."""

    run: RunPublic
    devices: int  # the batch's devices with a record for this target
    provisioned: int
    failed: int
    pending: int
    removed: int
    done_in_run: int  # provisioned since the run started (removal keeps no time: removed so far)
    seconds: float
    stalled: bool  # no process holds the run's lease: it was stopped without closing its record

    @property
    def done(self) -> int:
        return self.provisioned if self.run.kind == runs.PROVISION else self.removed

    @property
    def total(self) -> int:
        """What the run is working through: every device of the batch in this target, or (removal) the
        devices provisioned there when it started."""
        return self.devices if self.run.kind == runs.PROVISION else self.removed + self.provisioned

    @property
    def rate(self) -> float | None:
        """Devices a second so far; None for removal (its records keep no time) or before any progress."""
        if self.run.kind != runs.PROVISION or self.seconds <= 0 or not self.done_in_run:
            return None
        return self.done_in_run / self.seconds

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0


def running(*, session: Session, actor: Actor, bid: str | None = None, now: datetime | None = None
            ) -> list[RunProgress]:
    """The account's open (de)provisioning runs (of one batch with ``bid``), oldest first."""
    query = select(Run).where(Run.account_id == actor.account_id, Run.status == runs.RUNNING,
                              col(Run.kind).in_(WORK))
    if bid is not None:
        batch, _binding = owned_batch(session=session, actor=actor, bid=bid)
        query = query.where(Run.batch_id == batch.id)
    now = now or utcnow()
    return [_progress(session, row, now) for row in session.exec(query.order_by(col(Run.id))).all()]


def _progress(session: Session, row: Run, now: datetime) -> RunProgress:
    counts = records.status_counts(session=session, batch_id=row.batch_id, api_id=row.cloud_api_id)
    done = int(session.exec(select(func.count()).select_from(ProvisioningRecord).where(
        col(ProvisioningRecord.batch_id) == row.batch_id, col(ProvisioningRecord.cloud_api_id) == row.cloud_api_id,
        col(ProvisioningRecord.status) == records.PROVISIONED,
        col(ProvisioningRecord.provisioned_at) >= row.started_at)).one())
    held = session.exec(select(RunLease.expires_at).where(
        RunLease.batch_id == row.batch_id, col(RunLease.cloud_api_id) == row.cloud_api_id)).first()
    return RunProgress(run=runs.public(row), devices=sum(counts.values()),
                       provisioned=counts.get(records.PROVISIONED, 0), failed=counts.get(records.FAILED, 0),
                       pending=counts.get(records.PENDING, 0), removed=counts.get(records.REMOVED, 0),
                       done_in_run=done, seconds=max(0.0, (now - row.started_at).total_seconds()),
                       stalled=held is None or held < now)


def last_failed(*, session: Session, actor: Actor) -> dict[str, list[RunPublic]]:
    """Per BID, the targets whose last finished (de)provisioning run failed: flagged until a later run of
    that batch and target succeeds."""
    last = (select(func.max(Run.id)).where(Run.account_id == actor.account_id, col(Run.kind).in_(WORK),
                                           Run.status != runs.RUNNING)
            .group_by(col(Run.batch_id), col(Run.cloud_api_id)))
    flagged: dict[str, list[RunPublic]] = {}
    for row in session.exec(select(Run).where(col(Run.id).in_(last), Run.status == runs.FAILED)
                            .order_by(col(Run.cloud_api))).all():
        flagged.setdefault(row.bid, []).append(runs.public(row))
    return flagged


def last_runs(*, session: Session, actor: Actor, bid: str) -> dict[str, RunPublic]:
    """The batch's last finished (de)provisioning run per target name: the outcome a page keeps showing."""
    batch, _binding = owned_batch(session=session, actor=actor, bid=bid)
    last = (select(func.max(Run.id)).where(Run.batch_id == batch.id, Run.account_id == actor.account_id,
                                           col(Run.kind).in_(WORK),
                                           Run.status != runs.RUNNING)
            .group_by(col(Run.cloud_api_id)))
    return {row.cloud_api: runs.public(row) for row in session.exec(select(Run).where(col(Run.id).in_(last))).all()}


def ended(*, session: Session, actor: Actor, bid: str, run_ids: list[int]) -> list[RunPublic]:
    """Those of ``run_ids`` (runs a page showed running) that have closed since: their outcome."""
    if not run_ids:
        return []
    batch, _binding = owned_batch(session=session, actor=actor, bid=bid)
    return [runs.public(row) for row in session.exec(select(Run).where(
        col(Run.id).in_(run_ids[:20]), Run.batch_id == batch.id, Run.account_id == actor.account_id,
        Run.status != runs.RUNNING).order_by(col(Run.id))).all()]


@dataclass(frozen=True)
class Remaining:
    cloud_api: str
    devices: int
    provisioned: int

    @property
    def nothing_to_do(self) -> bool:
        return self.devices > 0 and self.provisioned >= self.devices


def remaining(*, session: Session, actor: Actor, bid: str, cloud_api: str | None) -> Remaining:
    """How much a Provision Now of the batch into ``cloud_api`` (or its target) has left to do, under the
    same permission and target rules as the run itself."""
    from bindery.provisioning.run import resolve_target

    batch, binding = owned_batch(session=session, actor=actor, bid=bid, action=Action.PROVISION)
    api = resolve_target(session=session, actor=actor, binding=binding, cloud_api=cloud_api)
    assert batch.id is not None and api.id is not None
    done = records.status_counts(session=session, batch_id=batch.id, api_id=api.id).get(records.PROVISIONED, 0)
    return Remaining(api.name, batch.device_count, done)
