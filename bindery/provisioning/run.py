"""A provisioning run in three steps — plan, chunks, finish — shared by the CLI and the flows.

Plan takes the run's lease on (batch, target), creates a pending record for every device without
one and cuts the devices still to do into chunks. Each chunk waits for the target's rate limit,
calls the connector and writes what the target confirmed; transient failures raise ``Transient``
so the caller retries the chunk (only its devices not yet provisioned). Finish releases the lease
and reports. A crash anywhere leaves records that say provisioned only for confirmed devices; the
rerun finds the others already present in the target (connectors are idempotent) and records them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from sqlmodel import Session

from bindery import alerts, audit, recovery, runs
from bindery.access import (
    Action,
    Actor,
    actor_for,
    batch_held_by,
    owned_batch,
    refuse_while_on_offer,
    unknown_bid,
)
from bindery.clouds.base import Connector, ConnectorError, DeviceCert, DeviceResult, Outcome, Transient
from bindery.clouds.config import get_cloud_api, settings_of
from bindery.clouds.connectors import connector_for
from bindery.clouds.kinds import spec_of
from bindery.db import get_engine, session_scope, through_outage
from bindery.errors import BinderyError, FieldError
from bindery.models.accounts import Binding
from bindery.models.clouds import CloudApi
from bindery.provisioning import lease, records, shards, status
from bindery.provisioning.quota import pacer_for
from bindery.provisioning.ratelimit import cost, rate_for
from bindery.settings import Settings

T = TypeVar("T")


class ShardLost(BinderyError):
    """Another run took this shard over (our lease expired): stop, it carries on."""


@dataclass
class RunPlan:
    """Small: passes between Prefect tasks (names and ids, never sessions or secrets)."""

    bid: str
    batch_id: int
    api_name: str
    api_id: int
    kind: str
    rate: float
    holder: str
    user: str
    chunks: list[tuple[int, int]] = field(default_factory=list)
    to_do: int = 0
    shard_id: int | None = None
    chunk_limit: int | None = None  # the Cloud API's own --chunk-size
    origin: runs.Origin = runs.CLI
    run_id: int | None = None  # the run history's row (shards of a run have none of their own)


@dataclass
class ChunkResult:
    index: int
    provisioned: int = 0
    already_present: int = 0
    failed: int = 0
    request_sizes: list[int] = field(default_factory=list)  # certificates per request, as the target allowed


@dataclass
class RunReport:
    bid: str
    cloud_api: str
    devices: int
    provisioned: int
    already_present: int
    failed: int  # given up on (bindery.provisioning.status): a permanent error, or retries used up
    failures: list[tuple[str, str]]
    warned: list[str] = field(default_factory=list)  # provisioned, but the receiver's policy was not applied
    request_sizes: list[int] = field(default_factory=list)  # the sizes interop requests took, in order
    not_tried: int = 0  # neither provisioned nor failed: the run ended before it reached them
    reasons: list[status.Reason] = field(default_factory=list)  # the failed devices' errors, most common first
    to_do: int | None = None  # devices the run set out to provision (None: not known)

    @property
    def complete(self) -> bool:
        return self.failed == 0 and self.provisioned == self.devices

    @property
    def nothing_to_do(self) -> bool:
        return self.to_do == 0 and self.complete

    @property
    def not_provisioned(self) -> int:
        return self.devices - self.provisioned

    def counts(self) -> dict[str, int]:
        return {"devices": self.devices, "provisioned": self.provisioned, "already_present": self.already_present,
                "failed": self.failed, "not_tried": self.not_tried, "warnings": len(self.warned)}

    def problem(self) -> str:
        """Why devices are not provisioned, in one line: "1000 devices failed: connection to … failed"."""
        parts = [status.failure_summary(self.failed, self.reasons),
                 f"{self.not_tried} not tried (the run ended before them)" if self.not_tried else ""]
        return "; ".join(part for part in parts if part)

    def summary(self) -> str:
        if self.nothing_to_do:
            return f"nothing to do: all {self.devices} devices already provisioned in {self.cloud_api}"
        problem = self.problem()
        return f"{self.provisioned} of {self.devices} devices provisioned into {self.cloud_api}" + (
            f"; {problem}" if problem else "")

    def sizes_summary(self) -> str:
        """The sizes interop requests took as they changed: "5 -> 10 -> 20 -> 25 certificates (24 requests)"."""
        sizes = self.request_sizes
        steps = [size for i, size in enumerate(sizes) if i == 0 or size != sizes[i - 1]]
        shown = " -> ".join(map(str, steps[:12])) + (" -> ..." if len(steps) > 12 else "")
        return f"{shown} certificates ({len(sizes)} requests)" if sizes else ""


def resolve_target(*, session: Session, actor: Actor, binding: Binding, cloud_api: str | None,
                   action: Action = Action.PROVISION) -> CloudApi:
    if cloud_api:
        return get_cloud_api(session=session, actor=actor, name=cloud_api, action=action)
    if binding.target_cloud_api_id is None:
        raise FieldError("cloud_api", "the batch has no target Product Cloud API: give {cloud_api} NAME", named=False,
                         mentions=("cloud_api",))
    api = session.get(CloudApi, binding.target_cloud_api_id)
    assert api is not None
    return api


def chunk_size(settings: Settings, plan: RunPlan) -> int:
    """Devices per chunk (one task): the Cloud API's --chunk-size, else the setting; at most the kind's limit."""
    return spec_of(plan.kind).chunk_size(plan.chunk_limit or settings.provision_chunk_size)


@dataclass(frozen=True)
class Authorized:
    batch_id: int
    bid: str
    api: CloudApi
    actor: str


def authorize(*, settings: Settings, user: str, bid: str, cloud_api: str | None,
              action: Action = Action.PROVISION) -> Authorized:
    """Who may provision which batch into which target: the rules module decides."""
    with session_scope(settings) as session:
        actor = actor_for(session=session, email=user)
        batch, binding = owned_batch(session=session, actor=actor, bid=bid, action=action)
        refuse_while_on_offer(session=session, batch=batch, doing="provision it")
        api = resolve_target(session=session, actor=actor, binding=binding, cloud_api=cloud_api, action=action)
        assert batch.id is not None and api.id is not None
        return Authorized(batch.id, batch.bid, api, actor.email)


def plan_run(*, settings: Settings, user: str, bid: str, cloud_api: str | None,
             action: Action = Action.PROVISION, origin: runs.Origin = runs.CLI) -> RunPlan:
    """Check who may provision what, then start the run."""
    allowed = authorize(settings=settings, user=user, bid=bid, cloud_api=cloud_api, action=action)
    return start_run(settings=settings, batch_id=allowed.batch_id, bid=allowed.bid, api=allowed.api,
                     actor=allowed.actor, origin=origin)


def new_plan(*, settings: Settings, batch_id: int, bid: str, api: CloudApi, actor: str,
             origin: runs.Origin = runs.CLI) -> RunPlan:
    assert api.id is not None
    options = settings_of(api)
    return RunPlan(bid=bid, batch_id=batch_id, api_name=api.name, api_id=api.id, kind=api.kind,
                   rate=rate_for(api.kind, options.get("quota"), options.get("pace")),
                   holder=lease.new_holder(origin.flow_run_id), user=actor, origin=origin,
                   chunk_limit=int(options["chunk_size"]) if options.get("chunk_size") else None)


def start_run(*, settings: Settings, batch_id: int, bid: str, api: CloudApi, actor: str,
              origin: runs.Origin = runs.CLI) -> RunPlan:
    """Lease, pending records, chunks and the run history's row for a run whose permission was already
    decided (by :func:`plan_run`, or by the operator's reconcile --repair)."""
    plan = new_plan(settings=settings, batch_id=batch_id, bid=bid, api=api, actor=actor, origin=origin)
    with Session(get_engine(settings)) as session:
        lease.acquire(session=session, batch_id=plan.batch_id, api_id=plan.api_id, holder=plan.holder,
                      seconds=settings.lease_seconds, wait=settings.lease_wait_seconds,
                      what=f"batch {plan.bid} into {plan.api_name}", gone=recovery.flow_run_over)
    try:
        with session_scope(settings) as session:
            hold_batch(session=session, plan=plan, api=api)
            records.ensure_records(session=session, batch_id=plan.batch_id, api_id=plan.api_id)
            plan.chunks = records.chunk_bounds(session=session, batch_id=plan.batch_id, api_id=plan.api_id,
                                               size=chunk_size(settings, plan))
            counts = records.status_counts(session=session, batch_id=plan.batch_id, api_id=plan.api_id)
            plan.to_do = sum(n for status, n in counts.items() if status != records.PROVISIONED)
            audit.record(session=session, actor=plan.user, action="provision.start", subject=plan.bid,
                         cloud_api=plan.api_name, devices=plan.to_do)
            replaced = runs.close_abandoned(session=session, kind=runs.PROVISION, batch_id=plan.batch_id,
                                            api_id=plan.api_id, crashed=recovery.flow_run_crashed)
            plan.run_id = runs.begin(session=session, kind=runs.PROVISION, batch_id=plan.batch_id, bid=plan.bid,
                                     api_id=plan.api_id, api_name=plan.api_name, started_by=plan.user,
                                     origin=origin, replaces_run_id=replaced)
    except BaseException:
        release(settings, plan)
        raise
    return plan


def hold_batch(*, session: Session, plan: RunPlan, api: CloudApi) -> None:
    """The permission was decided before the lease was taken (by :func:`authorize`, possibly while waiting
    for another run, or by reconcile before it asked the target): under the lease, with the batch locked
    until its records are made, it must still be the target's account's batch and not on offer. An offer,
    an accept or a split in between is seen here; one made after it sees this run's lease."""
    row = batch_held_by(session=session, batch_id=plan.batch_id, account_id=api.account_id, lock=True)
    if row is None:
        raise unknown_bid(plan.bid)
    refuse_while_on_offer(session=session, batch=row, doing="provision it")


def in_transaction(settings: Settings, work: Callable[[Session], T]) -> T:
    """``work`` in one short transaction, retried through a database outage for up to
    ``database_retry_seconds``: a chunk the target already confirmed must still be recorded, and a
    10-second restart should cost seconds, not a rerun."""

    def once() -> T:
        with Session(get_engine(settings)) as session:
            result = work(session)
            session.commit()
            return result

    return through_outage(once, url=settings.resolved_database_url, seconds=settings.database_retry_seconds)


def run_chunk(*, settings: Settings, plan: RunPlan, index: int) -> ChunkResult:
    """One chunk, once. Raises Transient when some of its devices should be tried again.

    Transactions stay short (SQLite locks the whole file): none is open while the chunk waits for
    the rate limit or talks to the target. Records are written only for what the target confirmed,
    request by request as the connector reports them (a crash re-sends only the requests in flight)."""

    def read_devices(session: Session) -> list[tuple[int, DeviceCert]]:
        if plan.shard_id is not None and not shards.holds(session=session, shard_id=plan.shard_id,
                                                          holder=plan.holder):
            raise ShardLost(f"shard of {plan.bid} into {plan.api_name} was taken over by another run")
        return records.chunk_devices(session=session, batch_id=plan.batch_id, api_id=plan.api_id,
                                     bounds=plan.chunks[index])

    devices = in_transaction(settings, read_devices)
    if not devices:
        return ChunkResult(index)
    pks = {cert.device_id: pk for pk, cert in devices}
    bucket = pacer_for(settings, plan.api_id, plan.rate)
    bucket.acquire(cost(plan.kind, len(devices)))

    def prepare(session: Session) -> Connector:
        records.mark_attempt(session=session, api_id=plan.api_id, device_pks=list(pks.values()))
        api = session.get(CloudApi, plan.api_id)
        assert api is not None
        return connector_for(session=session, settings=settings, api=api)

    def record(session: Session, results: Sequence[DeviceResult]) -> None:
        records.apply_results(session=session, api_id=plan.api_id, pks=pks, results=results)
        if plan.shard_id is None:
            lease.renew(session=session, batch_id=plan.batch_id, api_id=plan.api_id, holder=plan.holder,
                        seconds=settings.lease_seconds)
        else:
            shards.count_already_present(session=session, shard_id=plan.shard_id,
                                         count=sum(r.outcome is Outcome.ALREADY_PRESENT for r in results))

    recorded: set[str] = set()

    def confirmed(answered: Sequence[DeviceResult]) -> None:
        """What the target confirmed of one request, recorded before the next request goes out."""
        done = [r for r in answered if r.outcome is not Outcome.FAILED and r.device_id not in recorded]
        if done:
            in_transaction(settings, lambda session: record(session, done))
            recorded.update(r.device_id for r in done)

    connector = in_transaction(settings, prepare)
    connector.pace(bucket)
    try:
        results = connector.provision([cert for _, cert in devices], confirmed=confirmed)
        sizes = list(connector.request_sizes)
    except ConnectorError as exc:
        error, error_class = str(exc), "transient" if exc.transient else "permanent"
        in_transaction(settings, lambda session: records.record_chunk_error(
            session=session, api_id=plan.api_id, device_pks=list(pks.values()), error=error,
            error_class=error_class))
        if exc.transient:
            if exc.retry_after:
                bucket.pause(exc.retry_after)
            raise
        return ChunkResult(index, failed=len(devices))
    finally:
        connector.close()

    rest = [r for r in results if r.device_id not in recorded]
    if rest:  # what the connector did not hand over request by request (failures, kinds that do not)
        in_transaction(settings, lambda session: record(session, rest))
    transient = [r for r in results if r.outcome is Outcome.FAILED and r.error_class == "transient"]
    if transient:
        retry_after = max((r.retry_after or 0.0 for r in transient), default=0.0) or None
        if retry_after:
            bucket.pause(retry_after)
        raise Transient(f"{len(transient)} of {len(results)} devices failed transiently: {transient[0].error}",
                        retry_after)
    return ChunkResult(index, provisioned=sum(r.outcome is Outcome.PROVISIONED for r in results),
                       already_present=sum(r.outcome is Outcome.ALREADY_PRESENT for r in results),
                       failed=sum(r.outcome is Outcome.FAILED for r in results), request_sizes=sizes)


def retry_delay(attempt: int, base: float, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter, at least the target's Retry-After, at most a minute."""
    delay = random.uniform(0, base * 2 ** attempt)
    return min(60.0, max(delay, retry_after or 0.0))


def run_chunk_with_retries(*, settings: Settings, plan: RunPlan, index: int,
                           sleep: Callable[[float], None] = time.sleep) -> ChunkResult:
    """The CLI's retry loop; flows use Prefect task retries with the same policy instead."""
    for attempt in range(settings.provision_retries + 1):
        try:
            return run_chunk(settings=settings, plan=plan, index=index)
        except Transient as exc:
            if attempt == settings.provision_retries:
                break
            sleep(retry_delay(attempt, settings.retry_base_seconds, exc.retry_after))
    return ChunkResult(index)


def release(settings: Settings, plan: RunPlan) -> None:
    """On every way out of a run: this process stops holding it at once (so it can take the lease over
    itself), and the row is deleted as soon as the database answers (within the retry window)."""
    lease.forget(plan.holder)
    in_transaction(settings, lambda session: lease.release(session=session, batch_id=plan.batch_id,
                                                           api_id=plan.api_id, holder=plan.holder))


def finish_run(*, settings: Settings, plan: RunPlan, results: list[ChunkResult]) -> RunReport:
    """Release the lease, settle the devices tried (no run is on them any more: those not provisioned are
    failed), then report, close the run's row and alert."""
    release(settings, plan)
    with session_scope(settings) as session:
        status.settle(session=session, batch_id=plan.batch_id, api_id=plan.api_id)
        counts = records.status_counts(session=session, batch_id=plan.batch_id, api_id=plan.api_id)
        problems = records.failures(session=session, batch_id=plan.batch_id, api_id=plan.api_id)
        total = sum(counts.values())
        failed = counts.get(records.FAILED, 0)
        report = RunReport(bid=plan.bid, cloud_api=plan.api_name, devices=total,
                           provisioned=counts.get(records.PROVISIONED, 0),
                           already_present=sum(r.already_present for r in results),
                           failed=failed, failures=problems,
                           warned=records.warned_devices(session=session, batch_id=plan.batch_id,
                                                         api_id=plan.api_id),
                           request_sizes=[size for r in sorted(results, key=lambda r: r.index)
                                          for size in r.request_sizes],
                           not_tried=total - counts.get(records.PROVISIONED, 0) - failed,
                           reasons=status.reasons(session=session, batch_id=plan.batch_id, api_id=plan.api_id),
                           to_do=plan.to_do)
        audit.record(session=session, actor=plan.user, action="provision.finish", subject=plan.bid,
                     cloud_api=plan.api_name, provisioned=report.provisioned, failed=report.failed,
                     not_tried=report.not_tried)
        runs.finish(session=session, run_id=plan.run_id, ok=report.complete, counts=report.counts(),
                    message=report.summary())
        account = alerts.account_of(session, plan.batch_id)
    if not report.complete:
        alerts.emit(alerts.PROVISIONING_FAILED, bid=plan.bid, cloud_api=plan.api_name, account=account,
                    counts=report.counts(), message=report.summary())
    return report
