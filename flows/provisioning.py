"""Flows `provision-batch` and `bind-and-provision`: a batch's devices into a Product Cloud API."""

from __future__ import annotations

from threading import Event
from typing import Any
from uuid import UUID

from prefect import flow
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import PrefectFuture, as_completed
from prefect.states import Completed, Failed, State

from bindery.provisioning.records import POLICY_WARNING
from bindery.provisioning.run import ChunkResult, RunPlan, RunReport, retry_delay
from bindery.provisioning.sharded import already_present, supervise
from bindery.provisioning.shards import LeaseKeeper
from bindery.settings import get_settings
from bindery.tasks import artifacts
from bindery.tasks import provisioning as steps
from bindery.tasks.shards import PrefectLauncher


def _chunks(plan: RunPlan, label: str, lost: Event | None = None) -> list[ChunkResult]:
    """BINDERY_PROVISION_CONCURRENCY chunks in flight, the next submitted as soon as one ends (no window
    waits for its slowest chunk), retried with exponential backoff and jitter; stops early when ``lost``
    is set (a shard taken over by another run)."""
    settings = get_settings()
    chunk = steps.provision_chunk.with_options(
        retries=settings.provision_retries,
        retry_delay_seconds=[retry_delay(i, settings.retry_base_seconds) for i in range(settings.provision_retries)])
    progress = create_progress_artifact(0.0, key=artifacts.artifact_key("provisioning", label),
                                        description=f"Provisioning {label.replace('-', ' ')}")
    assert isinstance(progress, UUID)
    results: list[ChunkResult] = []
    pending: list[PrefectFuture[ChunkResult]] = []
    upcoming = iter(range(len(plan.chunks)))
    while True:
        while len(pending) < settings.provision_concurrency and not (lost is not None and lost.is_set()):
            index = next(upcoming, None)
            if index is None:
                break
            pending.append(chunk.submit(plan, index))
        if not pending:
            break
        done = next(as_completed(pending))
        pending.remove(done)
        done.wait()  # the final state from the future itself: the API's copy of it may lag behind
        results.append(done.result() if done.state.is_completed() else ChunkResult(-1))
        update_progress_artifact(progress, 100.0 * len(results) / max(1, len(plan.chunks)))
    update_progress_artifact(progress, 100.0)
    return results


def _run(plan: RunPlan) -> RunReport:
    results: list[ChunkResult] = []
    try:
        results = _chunks(plan, f"{plan.bid}-{plan.api_name}")
    finally:
        report = steps.finish(plan, results)
    return report


def _sharded(plan: RunPlan) -> RunReport:
    """Shards as flow runs of the provision-shard deployment, supervised until each is finished."""
    try:
        supervise(settings=get_settings(), plan=plan, launcher=PrefectLauncher())
    finally:
        report = steps.finish(plan, [ChunkResult(-1, already_present=already_present(settings=get_settings(),
                                                                                    plan=plan))])
    return report


def _outcome(report: RunReport) -> State[Any]:
    rows = [{"target": report.cloud_api, "devices": report.devices, "provisioned": report.provisioned,
             "already present": report.already_present, "failed": report.failed, "not tried": report.not_tried,
             "warnings (policy not applied)": len(report.warned), "request sizes": report.sizes_summary()}]
    artifacts.publish_table("provisioned", f"{report.bid}-{report.cloud_api}", rows,
                            description=f"Batch {report.bid} in {report.cloud_api}")
    summary = {"bid": report.bid, "cloud_api": report.cloud_api, "devices": report.devices,
               "provisioned": report.provisioned, "failed": report.failed, "not_tried": report.not_tried,
               "warnings": len(report.warned)}
    if report.warned:
        artifacts.publish_problems("provisioning-warnings", f"{report.bid}-{report.cloud_api}",
                                   f"{len(report.warned)} devices {POLICY_WARNING}",
                                   [f"{device}: {POLICY_WARNING}" for device in report.warned])
    if report.nothing_to_do:
        return Completed(message=report.summary(), data=summary)
    if report.complete:
        return Completed(message=f"{report.provisioned} devices provisioned", data=summary)
    artifacts.publish_problems("provisioning-failures", f"{report.bid}-{report.cloud_api}",
                               f"{report.not_provisioned} devices not provisioned into {report.cloud_api}: "
                               f"{report.problem()}",
                               [f"{device}: {error}" for device, error in report.failures])
    return Failed(message=report.summary(), data=summary)


@flow(name="provision-batch", description="Provision Now - a bound batch's devices into a Product Cloud API.")
def provision_batch(bid: str, cloud_api: str | None, user: str, shards: int = 1) -> State[Any]:
    """Provision Now: the batch's devices into a Product Cloud API.

    Args:
        bid: Product Batch ID.
        cloud_api: Product Cloud API name; empty for the batch's target.
        user: Email of the acting admin.
        shards: Split the batch into this many provision-shard flow runs, for workers on several hosts.
    """
    if shards > 1:
        return _outcome(_sharded(steps.plan_sharded(bid, cloud_api, user, shards)))
    return _outcome(_run(steps.plan(bid, cloud_api, user)))


@flow(name="provision-shard",
      description="One shard of a sharded provision-batch run; any worker of the pool picks it up.")
def provision_shard(bid: str, cloud_api: str, user: str, shard: int) -> State[Any]:
    """Claim one shard of a sharded run and provision its devices; gives the shard back when it cannot finish.

    Args:
        bid: Product Batch ID.
        cloud_api: Product Cloud API name.
        user: Email of the acting admin.
        shard: Shard number (from 0).
    """
    plan = steps.claim_shard(bid, cloud_api, user, shard)
    if plan is None:
        return Completed(message=f"shard {shard} is finished or held by another run")
    assert plan.shard_id is not None
    keeper = LeaseKeeper(get_settings(), plan.shard_id, plan.holder)
    results: list[ChunkResult] = []
    with keeper.running():
        try:
            results = _chunks(plan, f"{plan.bid}-{plan.api_name}-shard-{shard}", keeper.lost)
        finally:
            finished = steps.finish_shard(plan, results)
    summary = {"bid": bid, "cloud_api": cloud_api, "shard": shard,
               "provisioned": sum(r.provisioned + r.already_present for r in results)}
    if finished:
        return Completed(message=f"shard {shard}: {summary['provisioned']} devices provisioned", data=summary)
    if keeper.lost.is_set():
        return Completed(message=f"shard {shard} was taken over by another run", data=summary)
    return Failed(message=f"shard {shard} given back unfinished; provision-batch relaunches it", data=summary)


@flow(name="bind-and-provision",
      description="Bind a batch by its BID, then provision it into the picked or the account's default API.")
def bind_and_provision(bid: str, user: str, cloud_api: str | None = None) -> State[Any]:
    """Bind a batch, then provision it when an admin picked an API or the account's auto-provision is on.

    Args:
        bid: Product Batch ID.
        user: Email of the acting user.
        cloud_api: Product Cloud API to provision into (admins); empty to follow auto-provision.
    """
    planned = steps.bind(bid, user, cloud_api)
    if planned.cloud_api is None:
        return Completed(message=f"bound {bid}; nothing to provision",
                         data={"bid": bid, "devices": planned.outcome.devices, "provisioned": 0})
    plan = steps.plan(bid, planned.cloud_api, user, planned.action)
    return _outcome(_run(plan))




@flow(name="deprovision-batch", description="Remove a batch's devices from a Product Cloud API.")
def deprovision_batch(bid: str, cloud_api: str, user: str, forget: bool = False) -> State[Any]:
    """Remove the batch's devices from a Product Cloud API.

    Args:
        bid: Product Batch ID.
        cloud_api: Product Cloud API name.
        user: Email of the acting admin.
        forget: Only mark the records removed (the interop protocol has no removal).
    """
    report = steps.deprovision(bid, cloud_api, user, forget)
    artifacts.publish_table("deprovisioned", f"{bid}-{cloud_api}", [{
        "target": cloud_api, "removed": report.removed, "failed": len(report.failures),
        "records only": report.forgotten}], description=f"Batch {bid} removed from {cloud_api}")
    summary = {"bid": bid, "cloud_api": cloud_api, "removed": report.removed, "failed": len(report.failures)}
    if report.failures:
        return Failed(message=f"{len(report.failures)} devices still in {cloud_api}", data=summary)
    return Completed(message=f"{report.removed} devices removed", data=summary)
