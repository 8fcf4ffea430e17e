"""A provisioning run split into shards, each provisioned by its own flow run on any worker.

The parent holds the run's lease on (batch, target), cuts the shards and supervises them through a
``Launcher`` (Prefect's ``run_deployment`` in production, threads in tests); each shard run claims
its range, works through its chunks with the ordinary ``run_chunk`` and finishes or gives it back.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Protocol

from sqlmodel import Session, col, select

from bindery.access import Action
from bindery.db import get_engine, session_scope
from bindery.errors import BadInput
from bindery.models.provisioning import ShardLease
from bindery.provisioning import lease, records, shards
from bindery.provisioning.run import ChunkResult, RunPlan, authorize, chunk_size, new_plan, plan_run, release
from bindery.runs import CLI, Origin
from bindery.settings import Settings


class Launcher(Protocol):
    def launch(self, plan: RunPlan, shard: shards.ShardState) -> str:
        """Start a run of the shard; returns its run id."""

    def seen(self, run_id: str) -> shards.RunSeen:
        """Whether that run is over (completed, failed, crashed or cancelled), or since when a worker has it."""

    def abandon(self, run_id: str, reason: str) -> None:
        """Mark a run given up on as crashed (its worker is gone or hangs)."""


def start_sharded(*, settings: Settings, user: str, bid: str, cloud_api: str | None, shard_count: int,
                  action: Action = Action.PROVISION, origin: Origin = CLI) -> RunPlan:
    """The run's lease and pending records as for any run, then its shards."""
    plan = plan_run(settings=settings, user=user, bid=bid, cloud_api=cloud_api, action=action, origin=origin)
    try:
        with session_scope(settings) as session:
            shards.cut(session=session, batch_id=plan.batch_id, api_id=plan.api_id, shards=shard_count)
    except BaseException:
        release(settings, plan)
        raise
    plan.chunks = []  # the shards carry the work; the plan stays small as a flow parameter
    return plan


def supervise(*, settings: Settings, plan: RunPlan, launcher: Launcher,
              sleep: Callable[[float], None] = time.sleep) -> None:
    """Launch every shard, relaunch those whose run died, return when each is finished (or was
    launched ``shard_launches`` times in this run without finishing: its devices stay not provisioned
    and the report says so)."""
    engine = get_engine(settings)
    launches: Counter[int] = Counter()
    given_up: set[int] = set()
    while True:
        with Session(engine) as session:
            current = shards.states(session=session, batch_id=plan.batch_id, api_id=plan.api_id)
            lease.renew(session=session, batch_id=plan.batch_id, api_id=plan.api_id, holder=plan.holder,
                        seconds=settings.lease_seconds)
            session.commit()
        unfinished = [s for s in current if not s.finished and s.id not in given_up]
        if not unfinished:
            return
        for shard in unfinished:
            run = launcher.seen(shard.flow_run_id) if shard.holder is None and shard.flow_run_id else None
            if run is not None and run.ended:  # it may have claimed and finished the shard since it was read
                with Session(engine) as session:
                    shard = shards.state_of(session=session, shard_id=shard.id) or shard
            if not shards.to_relaunch(shard, run=run, start_seconds=settings.shard_start_seconds):
                continue
            if launches[shard.id] >= settings.shard_launches:
                given_up.add(shard.id)
                continue
            if shard.flow_run_id is not None and (run is None or not run.ended):
                launcher.abandon(shard.flow_run_id, f"shard {shard.shard}'s run stopped answering; another run "
                                                    "takes the shard over")
            with session_scope(settings) as session:
                shards.expire(session=session, shard_id=shard.id, holder=shard.holder)
            run_id = launcher.launch(plan, shard)
            launches[shard.id] += 1
            with session_scope(settings) as session:
                shards.launched(session=session, shard_id=shard.id, flow_run_id=run_id)
        sleep(settings.supervise_seconds)


def already_present(*, settings: Settings, plan: RunPlan) -> int:
    with session_scope(settings) as session:
        return sum(s.already_present for s in shards.states(session=session, batch_id=plan.batch_id,
                                                           api_id=plan.api_id))


def start_shard(*, settings: Settings, user: str, bid: str, cloud_api: str, shard: int) -> RunPlan | None:
    """Claim a shard for this run; None when it is finished or another live run holds it."""
    allowed = authorize(settings=settings, user=user, bid=bid, cloud_api=cloud_api)
    plan = new_plan(settings=settings, batch_id=allowed.batch_id, bid=allowed.bid, api=allowed.api,
                    actor=allowed.actor)
    with session_scope(settings) as session:
        row = session.exec(select(ShardLease).where(
            col(ShardLease.batch_id) == plan.batch_id, col(ShardLease.cloud_api_id) == plan.api_id,
            col(ShardLease.shard) == shard)).first()
        if row is None or row.id is None:
            raise BadInput(f"batch {plan.bid} has no shard {shard} into {plan.api_name}")
        if not shards.claim(session=session, shard_id=row.id, holder=plan.holder,
                            seconds=settings.shard_lease_seconds):
            return None
        plan.shard_id = row.id
        plan.chunks = records.chunk_bounds(session=session, batch_id=plan.batch_id, api_id=plan.api_id,
                                           size=chunk_size(settings, plan),
                                           within=(row.first_device_id, row.last_device_id))
    return plan


def finish_shard(*, settings: Settings, plan: RunPlan, results: list[ChunkResult]) -> bool:
    """Finished when every chunk ran and no device of the range is still waiting (each provisioned or
    failed for good); else give the shard back so it is relaunched. Returns whether it finished."""
    assert plan.shard_id is not None
    with session_scope(settings) as session:
        row = session.get(ShardLease, plan.shard_id)
        assert row is not None
        waiting = records.pending_between(session=session, batch_id=plan.batch_id, api_id=plan.api_id,
                                          first=row.first_device_id, last=row.last_device_id)
        if len(results) == len(plan.chunks) and all(r.index >= 0 for r in results) and not waiting:
            return shards.finish(session=session, shard_id=plan.shard_id, holder=plan.holder)
        shards.release(session=session, shard_id=plan.shard_id, holder=plan.holder)
    return False
