"""Recovery without a person: a provisioning flow run that crashed (its process was killed, its host lost)
is started again, with the same deployment and parameters, at most BINDERY_CRASH_RESTARTS times per batch
and target, each after a longer wait; then it raises ``bindery.provisioning.failed`` instead.

Prefect decides that a run crashed — the worker when it sees its flow-run process die, or the
``bindery-zombies`` automation when a run's heartbeats stop (its worker died too) — and the
``bindery-recovery`` automation starts the ``recover-crashed-run`` deployment for every Crashed
provisioning run. That run, on any worker, calls :func:`recover`. The restarts of one batch and target
are counted along the chain of runs that replaced each other (the tags ``bindery:attempt:K`` and
``bindery:replaces:<flow run>`` on each rerun, shown in the Prefect UI), so a rerun started by hand
starts a new count. Reconcile runs are not started again: the next night's run does their work.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from bindery import alerts, runs
from bindery.db import session_scope
from bindery.models.accounts import Binding
from bindery.models.catalog import Batch
from bindery.models.clouds import CloudApi
from bindery.models.provisioning import RunLease, ShardLease
from bindery.provisioning import lease, status
from bindery.settings import Settings, get_settings

RESTARTED_FLOWS = ("provision-batch", "provision-shard", "deprovision-batch", "bind-and-provision")
ATTEMPT_TAG = "bindery:attempt:"
REPLACES_TAG = "bindery:replaces:"
FINAL = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CrashedRun:
    """What recovery needs of a flow run, read from Prefect."""

    flow_run_id: str
    flow_name: str
    state_type: str
    deployment_id: str | None
    parameters: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    has_parent: bool = False


@dataclass(frozen=True)
class Decision:
    restart: bool
    attempt: int  # the crashed run's attempt (1: the run a person or a system started)
    delay: float = 0.0
    tags: tuple[str, ...] = ()
    reason: str = ""


def attempt_of(tags: tuple[str, ...] | list[str]) -> int:
    for tag in tags:
        if tag.startswith(ATTEMPT_TAG) and tag[len(ATTEMPT_TAG):].isdigit():
            return int(tag[len(ATTEMPT_TAG):])
    return 1


def replaced_by_tags(tags: tuple[str, ...] | list[str]) -> str | None:
    """The flow run a rerun replaces, from its tags."""
    return next((tag[len(REPLACES_TAG):] for tag in tags if tag.startswith(REPLACES_TAG)), None)


def decide(run: CrashedRun, settings: Settings) -> Decision | None:
    """None when recovery leaves the run alone; else whether to start it again, when, and as what."""
    if run.state_type != "CRASHED" or run.flow_name not in RESTARTED_FLOWS or run.deployment_id is None:
        return None
    if run.flow_name == "provision-shard" and run.has_parent:
        return None  # its provision-batch run relaunches it (or, crashed too, is started again itself)
    attempt = attempt_of(run.tags)
    if attempt > settings.crash_restarts:
        return Decision(False, attempt, reason=f"crashed {attempt} times in a row; not started again "
                                               f"(BINDERY_CRASH_RESTARTS={settings.crash_restarts})")
    kept = tuple(t for t in run.tags if not t.startswith((ATTEMPT_TAG, REPLACES_TAG)))
    return Decision(True, attempt, delay=settings.crash_backoff_seconds * 2 ** (attempt - 1),
                    tags=(*kept, f"{ATTEMPT_TAG}{attempt + 1}", f"{REPLACES_TAG}{run.flow_run_id}"))


# --- Prefect's word on a flow run (asked by the lease and the run history) ---------------------------------

_states: dict[str, str] = {}


def flow_run_state(flow_run_id: str) -> str | None:
    """The flow run's state type, or None when no Prefect server is known or it does not answer. Final
    states are remembered (they do not change)."""
    if flow_run_id in _states:
        return _states[flow_run_id]
    if "prefect" not in sys.modules and not get_settings().prefect_api_url:
        return None
    try:
        from prefect import get_client

        with get_client(sync_client=True) as client:
            run = client.read_flow_run(flow_run_id)  # type: ignore[arg-type]
    except Exception as exc:  # no server, or not this flow run: Prefect says nothing
        log.info("flow run %s: state unknown (%s)", flow_run_id, exc)
        return None
    state = run.state.type.value if run.state is not None else None
    if state in FINAL:
        _states[flow_run_id] = state
    return state


def flow_run_over(flow_run_id: str) -> bool:
    """Prefect says the flow run ended: a lease it still holds is held by nobody."""
    return flow_run_state(flow_run_id) in FINAL


def flow_run_crashed(flow_run_id: str) -> bool:
    return flow_run_state(flow_run_id) == "CRASHED"


# --- the recovery of one crashed run ------------------------------------------------------------------------

def close_crashed(settings: Settings, run: CrashedRun) -> list[int]:
    """Its history rows closed as "crashed: process lost", the leases its holder name still holds
    released when the holder is surely gone (dead on this host; on another, Prefect said Crashed), then the
    devices each of its provisioning runs tried settled (:func:`settle_crashed`)."""
    with session_scope(settings) as session:
        rows = runs.close_crashed(session=session, flow_run_id=run.flow_run_id)
        closed = [row.id for row in rows if row.id is not None]
        tried = [(row.batch_id, row.cloud_api_id, row.started_at) for row in rows if row.kind == runs.PROVISION]
        held = session.exec(select(RunLease).where(col(RunLease.holder).endswith(f":{run.flow_run_id}"))).all()
        for row in held:
            if lease.holder_is_dead(row.holder, lambda flow_run: flow_run == run.flow_run_id):
                session.delete(row)
    for batch_id, api_id, since in tried:
        settle_crashed(settings, batch_id=batch_id, api_id=api_id, since=since)
    return closed


def settle_crashed(settings: Settings, *, batch_id: int, api_id: int, since: datetime) -> int:
    """What a crashed run tried, settled as its own end would have (failed, "the run crashed…"), under the
    (batch, target) lease taken for the purpose: when a live run holds it (a rerun already started), that
    run is on the devices and settles them itself, so nothing is touched; devices of a shard a live run
    still claims are left to it. Returns how many were settled."""
    holder = lease.new_holder()
    try:
        with session_scope(settings) as session:
            try:
                lease.acquire(session=session, batch_id=batch_id, api_id=api_id, holder=holder,
                              seconds=settings.lease_seconds, wait=0, what="the batch")
            except lease.Busy:
                log.info("batch %s, target %s: a live run holds it and settles its devices", batch_id, api_id)
                return 0
            now = datetime.now(UTC)
            claimed = session.exec(select(ShardLease.first_device_id, ShardLease.last_device_id).where(
                ShardLease.batch_id == batch_id, ShardLease.cloud_api_id == api_id,
                col(ShardLease.finished_at).is_(None), col(ShardLease.holder).is_not(None),
                col(ShardLease.expires_at) >= now)).all()
            settled = status.settle_lost(session=session, batch_id=batch_id, api_id=api_id, since=since,
                                         spare=[(first, last) for first, last in claimed])
            lease.release(session=session, batch_id=batch_id, api_id=api_id, holder=holder)
    finally:
        lease.forget(holder)
    return settled


def _target_of(session: Session, bid: str, cloud_api: str | None) -> tuple[str, str]:
    """The alert's target name and account for a batch (the batch's target when the run named none)."""
    batch = session.exec(select(Batch).where(Batch.bid == bid)).first()
    if batch is None or batch.id is None:
        return cloud_api or "", ""
    if not cloud_api:
        target = session.exec(select(CloudApi.name).join(Binding, col(Binding.target_cloud_api_id) == CloudApi.id)
                              .where(Binding.batch_id == batch.id)).first()
        cloud_api = target or ""
    return cloud_api, alerts.account_of(session, batch.id)


def give_up(settings: Settings, run: CrashedRun, decision: Decision) -> None:
    bid = str(run.parameters.get("bid", ""))
    with session_scope(settings) as session:
        cloud_api, account = _target_of(session, bid, run.parameters.get("cloud_api"))
    alerts.emit(alerts.PROVISIONING_FAILED, bid=bid, cloud_api=cloud_api, account=account,
                counts={"crashes": decision.attempt}, message=f"{run.flow_name} {decision.reason}")


def read_crashed(client: Any, flow_run_id: str) -> CrashedRun:
    run = client.read_flow_run(flow_run_id)
    flow = client.read_flow(run.flow_id)
    return CrashedRun(flow_run_id=str(run.id), flow_name=flow.name,
                      state_type=run.state.type.value if run.state else "",
                      deployment_id=str(run.deployment_id) if run.deployment_id else None,
                      parameters=dict(run.parameters), tags=tuple(run.tags or ()),
                      has_parent=run.parent_task_run_id is not None)


def recover(settings: Settings, flow_run_id: str) -> str:
    """What recovery did about one flow run, in one line (the recover-crashed-run run's message)."""
    from prefect import get_client
    from prefect.states import Scheduled

    flow_run_id = flow_run_id.removeprefix("prefect.flow-run.")
    with get_client(sync_client=True) as client:
        run = read_crashed(client, flow_run_id)
        decision = decide(run, settings)
        if decision is None:
            return f"flow run {flow_run_id} ({run.flow_name}, {run.state_type}): nothing to recover"
        closed = close_crashed(settings, run)
        if not decision.restart:
            give_up(settings, run, decision)
            return f"flow run {flow_run_id} {decision.reason}; alert sent"
        when = datetime.now(UTC) + timedelta(seconds=decision.delay)
        rerun = client.create_flow_run_from_deployment(
            run.deployment_id, parameters=run.parameters, tags=list(decision.tags),  # type: ignore[arg-type]
            state=Scheduled(scheduled_time=when, message=f"restart {decision.attempt} of crashed run {flow_run_id}"),
            idempotency_key=f"bindery-recovery-{flow_run_id}")
    rows = f" (history row {', '.join(map(str, closed))} closed as crashed)" if closed else ""
    return (f"flow run {flow_run_id} crashed{rows}; started again as {rerun.id} "
            f"in {decision.delay:g} s (restart {decision.attempt} of {settings.crash_restarts})")
