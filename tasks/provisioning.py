"""Tasks of the provisioning flows. Chunks retry only transient failures (Bindery's error tree)."""

from __future__ import annotations

from typing import Any

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun

from bindery.access import Action
from bindery.clouds.base import Transient
from bindery.provisioning import removal, run, service, sharded
from bindery.settings import get_settings
from bindery.tasks.origin import flow_origin


def transient_only(_task: Task[..., Any], _task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a chunk only when it failed with a Transient error."""
    try:
        state.result()
    except Transient:
        return True
    except Exception:
        return False
    return False


@task(name="plan-provisioning", cache_policy=NO_CACHE)
def plan(bid: str, cloud_api: str | None, user: str, action: Action = Action.PROVISION) -> run.RunPlan:
    return run.plan_run(settings=get_settings(), user=user, bid=bid, cloud_api=cloud_api, action=action,
                        origin=flow_origin())


@task(name="plan-sharded-provisioning", cache_policy=NO_CACHE)
def plan_sharded(bid: str, cloud_api: str | None, user: str, shards: int,
                 action: Action = Action.PROVISION) -> run.RunPlan:
    return sharded.start_sharded(settings=get_settings(), user=user, bid=bid, cloud_api=cloud_api,
                                 shard_count=shards, action=action, origin=flow_origin())


@task(name="claim-shard", cache_policy=NO_CACHE)
def claim_shard(bid: str, cloud_api: str, user: str, shard: int) -> run.RunPlan | None:
    return sharded.start_shard(settings=get_settings(), user=user, bid=bid, cloud_api=cloud_api, shard=shard)


@task(name="finish-shard", cache_policy=NO_CACHE)
def finish_shard(plan: run.RunPlan, results: list[run.ChunkResult]) -> bool:
    return sharded.finish_shard(settings=get_settings(), plan=plan, results=results)


@task(name="provision-chunk", cache_policy=NO_CACHE, retry_condition_fn=transient_only,
      task_run_name="provision-chunk-{index}")
def provision_chunk(plan: run.RunPlan, index: int) -> run.ChunkResult:
    return run.run_chunk(settings=get_settings(), plan=plan, index=index)


@task(name="finish-provisioning", cache_policy=NO_CACHE)
def finish(plan: run.RunPlan, results: list[run.ChunkResult]) -> run.RunReport:
    return run.finish_run(settings=get_settings(), plan=plan, results=results)


@task(name="bind-for-provisioning", cache_policy=NO_CACHE)
def bind(bid: str, user: str, cloud_api: str | None) -> service.BindPlan:
    return service.bind_for_provisioning(settings=get_settings(), user=user, bid=bid, cloud_api=cloud_api)


@task(name="deprovision", cache_policy=NO_CACHE)
def deprovision(bid: str, cloud_api: str, user: str, forget: bool) -> removal.RemovalReport:
    return removal.deprovision_batch(settings=get_settings(), user=user, bid=bid, cloud_api=cloud_api, forget=forget,
                                     origin=flow_origin())
