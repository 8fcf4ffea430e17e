"""Run history: who or what started each provisioning, deprovisioning and reconcile run, and how it ended.

A run row is written when the run starts (it is running then) and closed when it ends; a reconcile
run keeps its findings, which is how the last drift report and its trend are read back. Reading goes
through the rules module: another account's batch is unknown, members see their account's runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from bindery.access import Actor, owned_batch
from bindery.errors import BadInput
from bindery.models.accounts import Binding
from bindery.models.runs import Run, RunPublic
from bindery.models.types import utcnow

PROVISION, DEPROVISION, RECONCILE = "provision", "deprovision", "reconcile"
RUNNING, COMPLETED, FAILED = "running", "completed", "failed"
VIAS = ("cli", "console", "schedule", "prefect-api", "flow", "reconcile", "recovery")
MAX_RUNS = 500
TREND = 30


@dataclass(frozen=True)
class Origin:
    """How a run was started: the entry point, the Prefect flow run when it was one, and the crashed flow
    run it was started again for (Bindery's recovery)."""

    via: str = "cli"
    flow_run_id: str | None = None
    flow_run_url: str | None = None
    replaces: str | None = None


CLI = Origin("cli")
CONSOLE = Origin("console")


def begin(*, session: Session, kind: str, batch_id: int, bid: str, api_id: int, api_name: str, started_by: str,
          origin: Origin, replaces_run_id: int | None = None) -> int:
    """The run's row, in the caller's transaction (it commits with the run's start)."""
    account_id = session.exec(select(Binding.account_id).where(Binding.batch_id == batch_id)).one()
    if replaces_run_id is None and origin.replaces:
        replaces_run_id = session.exec(select(Run.id).where(Run.flow_run_id == origin.replaces, Run.kind == kind,
                                                            Run.batch_id == batch_id, Run.cloud_api_id == api_id)
                                       .order_by(col(Run.id).desc())).first()
    row = Run(kind=kind, bid=bid, cloud_api=api_name, started_by=started_by[:320], started_via=origin.via,
              flow_run_id=origin.flow_run_id, flow_run_url=origin.flow_run_url, account_id=account_id,
              batch_id=batch_id, cloud_api_id=api_id, replaces_run_id=replaces_run_id)
    session.add(row)
    session.flush()
    assert row.id is not None
    return row.id


ABANDONED = "ended without closing its record (its process was killed or lost the database); a later run took over"
CRASHED = "crashed: process lost"


def close_abandoned(*, session: Session, kind: str, batch_id: int, api_id: int,
                    crashed: Callable[[str], bool] = lambda _flow_run_id: False) -> int | None:
    """Rows of earlier runs on this batch and target still marked running: called once a new run holds
    the (batch, target) lease, which proves they hold nothing any more (a process killed with -9 never
    wrote its end). They are closed as failed, with when this was noticed; "crashed: process lost" when
    Prefect says their flow run crashed. Returns the newest one's id (the run this one replaces)."""
    stale = session.exec(select(Run).where(Run.kind == kind, Run.batch_id == batch_id,
                                           Run.cloud_api_id == api_id, Run.status == RUNNING)).all()
    for row in stale:
        lost = row.flow_run_id is not None and crashed(row.flow_run_id)
        row.status, row.finished_at, row.message = FAILED, utcnow(), CRASHED if lost else ABANDONED
        session.add(row)
    return max((row.id for row in stale if row.id is not None), default=None)


def close_crashed(*, session: Session, flow_run_id: str) -> list[Run]:
    """The rows a crashed flow run left running, closed as failed "crashed: process lost" (Bindery's
    recovery calls this as soon as Prefect says the run crashed, before any rerun)."""
    rows = session.exec(select(Run).where(Run.flow_run_id == flow_run_id, Run.status == RUNNING)).all()
    for row in rows:
        row.status, row.finished_at, row.message = FAILED, utcnow(), CRASHED
        session.add(row)
    return list(rows)


def finish(*, session: Session, run_id: int | None, ok: bool, counts: dict[str, int], message: str,
           findings: dict[str, list[str]] | None = None) -> None:
    if run_id is None:
        return
    row = session.get(Run, run_id)
    if row is None:
        return
    row.status, row.finished_at, row.message = COMPLETED if ok else FAILED, utcnow(), message[:512]
    row.counts = json.dumps(counts, sort_keys=True)
    if findings is not None:
        row.findings = json.dumps(findings, sort_keys=True)
    session.add(row)


def public(row: Run) -> RunPublic:
    assert row.id is not None
    return RunPublic(**row.model_dump(exclude={"counts", "findings", "account_id", "batch_id", "cloud_api_id"}),
                     counts=json.loads(row.counts or "{}"), findings=json.loads(row.findings) if row.findings else None)


def list_runs(*, session: Session, actor: Actor, bid: str | None = None, kind: str | None = None,
              limit: int = 50, before: int | None = None) -> list[RunPublic]:
    """The account's runs, newest first; ``before`` (a run id) pages back."""
    if not 1 <= limit <= MAX_RUNS:
        raise BadInput(f"limit: {limit} is not from 1 to {MAX_RUNS}")
    if kind is not None and kind not in (PROVISION, DEPROVISION, RECONCILE):
        raise BadInput(f"kind: {kind[:40]!r} is not one of {PROVISION}, {DEPROVISION}, {RECONCILE}")
    query = select(Run).where(Run.account_id == actor.account_id)
    if bid is not None:
        batch, _binding = owned_batch(session=session, actor=actor, bid=bid)
        query = query.where(Run.batch_id == batch.id)
    if kind is not None:
        query = query.where(Run.kind == kind)
    if before is not None:
        query = query.where(col(Run.id) < before)
    return [public(row) for row in session.exec(query.order_by(col(Run.id).desc()).limit(limit)).all()]


def latest_reports(*, session: Session, actor: Actor | None, account_id: int | None = None) -> list[dict[str, Any]]:
    """The last reconcile report of every batch and target (of the actor's account; for the operator, all or
    ``account_id``'s), each with the trend of its last 30: drifted devices per run, oldest first."""
    query = select(func.max(Run.id)).where(Run.kind == RECONCILE, col(Run.finished_at).is_not(None))
    if actor is not None:
        account_id = actor.account_id
    if account_id is not None:
        query = query.where(Run.account_id == account_id)
    last_ids = session.exec(query.group_by(col(Run.batch_id), col(Run.cloud_api_id))).all()
    reports = []
    for row in session.exec(select(Run).where(col(Run.id).in_(last_ids)).order_by(col(Run.bid), col(Run.cloud_api))):
        history = session.exec(select(Run.counts, Run.finished_at).where(
            Run.kind == RECONCILE, Run.batch_id == row.batch_id, Run.cloud_api_id == row.cloud_api_id,
            col(Run.finished_at).is_not(None)).order_by(col(Run.id).desc()).limit(TREND)).all()
        report = public(row).model_dump(mode="json")
        report["trend"] = [json.loads(counts).get("drift", 0) for counts, _at in reversed(history)]
        report["checks"] = [{"at": at.isoformat() if at else None, "drift": json.loads(counts).get("drift", 0)}
                            for counts, at in reversed(history)]
        reports.append(report)
    return reports
