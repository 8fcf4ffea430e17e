"""Provisioning as the CLI runs it (in this process), plus targets and the auto-provision setting."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlmodel import Session

from bindery import audit, runs
from bindery.access import Action, Actor, actor_for, on_offer, owned_batch, refuse_while_on_offer, require
from bindery.binding import BindOutcome, bind
from bindery.clouds.config import get_cloud_api
from bindery.db import session_scope
from bindery.models.clouds import CloudApi
from bindery.models.provisioning import AccountSettings
from bindery.models.types import utcnow
from bindery.provisioning.run import (
    ChunkResult,
    RunPlan,
    RunReport,
    finish_run,
    plan_run,
    run_chunk_with_retries,
)
from bindery.settings import Settings
from bindery.transfer import Accepted, accept

Progress = Callable[[int, int], None]


def provision_batch(*, settings: Settings, user: str, bid: str, cloud_api: str | None = None,
                    progress: Progress | None = None, action: Action = Action.PROVISION,
                    origin: runs.Origin = runs.CLI) -> RunReport:
    plan = plan_run(settings=settings, user=user, bid=bid, cloud_api=cloud_api, action=action, origin=origin)
    return execute(settings=settings, plan=plan, progress=progress)


def execute(*, settings: Settings, plan: RunPlan, progress: Progress | None = None) -> RunReport:
    """Run a planned provisioning in this process: chunks on threads, retried, then finish."""
    results: list[ChunkResult] = []
    try:
        with ThreadPoolExecutor(max_workers=settings.provision_concurrency) as pool:
            jobs = [pool.submit(run_chunk_with_retries, settings=settings, plan=plan, index=i)
                    for i in range(len(plan.chunks))]
            for job in jobs:
                results.append(job.result())
                if progress:
                    progress(len(results), len(jobs))
    finally:
        report = finish_run(settings=settings, plan=plan, results=results)
    return report


def set_target(*, session: Session, actor: Actor, bid: str, cloud_api: str) -> CloudApi:
    """Change the batch's Product Cloud API; provisions nothing."""
    batch, binding = owned_batch(session=session, actor=actor, bid=bid, action=Action.PICK_CLOUD_API)
    refuse_while_on_offer(session=session, batch=batch, doing="change its target")
    api = get_cloud_api(session=session, actor=actor, name=cloud_api, action=Action.PICK_CLOUD_API)
    binding.target_cloud_api_id = api.id
    session.add(binding)
    audit.record(session=session, actor=actor.email, action="batch.set_target", subject=batch.bid, cloud_api=api.name)
    return api


@dataclass(frozen=True)
class AutoProvision:
    enabled: bool
    cloud_api: str | None


def account_settings(*, session: Session, actor: Actor) -> AutoProvision:
    row = session.get(AccountSettings, actor.account_id)
    if row is None:
        return AutoProvision(False, None)
    api = session.get(CloudApi, row.default_cloud_api_id) if row.default_cloud_api_id else None
    return AutoProvision(row.auto_provision, api.name if api else None)


def set_auto_provision(*, session: Session, actor: Actor, enabled: bool, cloud_api: str | None) -> AutoProvision:
    require(actor, Action.CONFIGURE_CLOUD_API)
    row = session.get(AccountSettings, actor.account_id) or AccountSettings(account_id=actor.account_id,
                                                                            updated_by=actor.email)
    if enabled:
        if cloud_api is None and row.default_cloud_api_id is None:
            from bindery.errors import FieldError

            raise FieldError("cloud_api", "auto-provision needs a default: give {cloud_api} NAME", named=False,
                             mentions=("cloud_api",))
        if cloud_api is not None:
            row.default_cloud_api_id = get_cloud_api(session=session, actor=actor, name=cloud_api).id
    row.auto_provision = enabled
    row.updated_at, row.updated_by = utcnow(), actor.email
    session.add(row)
    audit.record(session=session, actor=actor.email, action="settings.auto_provision", subject=actor.account_name,
                 enabled=enabled, cloud_api=cloud_api)
    session.flush()
    return account_settings(session=session, actor=actor)


@dataclass(frozen=True)
class BindPlan:
    outcome: BindOutcome
    cloud_api: str | None
    action: Action


def bind_for_provisioning(*, settings: Settings, user: str, bid: str, cloud_api: str | None) -> BindPlan:
    """Bind, then decide where to provision: the API an admin picked, or the account's auto-provision
    default (which also becomes the batch's target when it has none). Nothing changes when refused."""
    with session_scope(settings) as session:
        actor = actor_for(session=session, email=user)
        if cloud_api is not None:
            require(actor, Action.PICK_CLOUD_API)
            get_cloud_api(session=session, actor=actor, name=cloud_api, action=Action.PICK_CLOUD_API)
        outcome = bind(session=session, actor=actor, bid=bid)
        if cloud_api is not None:
            set_target(session=session, actor=actor, bid=bid, cloud_api=cloud_api)
            return BindPlan(outcome, cloud_api, Action.PROVISION)
        auto = account_settings(session=session, actor=actor)
        if not auto.enabled or auto.cloud_api is None:
            return BindPlan(outcome, None, Action.BIND)
        batch, binding = owned_batch(session=session, actor=actor, bid=bid)
        if outcome.already and on_offer(session=session, batch=batch):
            return BindPlan(outcome, None, Action.BIND)  # auto-provisioning leaves a batch on offer alone
        defaults = session.get(AccountSettings, actor.account_id)
        if binding.target_cloud_api_id is None and defaults is not None:
            binding.target_cloud_api_id = defaults.default_cloud_api_id
            session.add(binding)
        return BindPlan(outcome, auto.cloud_api, Action.AUTO_PROVISION)


def bind_and_provision(*, settings: Settings, user: str, bid: str, cloud_api: str | None = None,
                       progress: Progress | None = None, origin: runs.Origin = runs.CLI
                       ) -> tuple[BindOutcome, RunReport | None]:
    planned = bind_for_provisioning(settings=settings, user=user, bid=bid, cloud_api=cloud_api)
    if planned.cloud_api is None:
        return planned.outcome, None
    report = provision_batch(settings=settings, user=user, bid=bid, cloud_api=planned.cloud_api,
                             progress=progress, action=planned.action, origin=origin)
    return planned.outcome, report


@dataclass(frozen=True)
class AcceptPlan:
    accepted: Accepted
    cloud_api: str | None


def accept_for_provisioning(*, settings: Settings, user: str, code: str) -> AcceptPlan:
    """Accept a transferred batch (committed at once); the receiver's auto-provision setting then decides
    where to provision, as on a bind (its default API also becomes the batch's target)."""
    with session_scope(settings) as session:
        actor = actor_for(session=session, email=user)
        accepted = accept(session=session, actor=actor, code=code)
        auto = account_settings(session=session, actor=actor)
        defaults = session.get(AccountSettings, actor.account_id)
        if not auto.enabled or auto.cloud_api is None or defaults is None:
            return AcceptPlan(accepted, None)
        _batch, binding = owned_batch(session=session, actor=actor, bid=accepted.bid)
        binding.target_cloud_api_id = defaults.default_cloud_api_id
        session.add(binding)
        return AcceptPlan(accepted, auto.cloud_api)


def accept_and_provision(*, settings: Settings, user: str, code: str, progress: Progress | None = None,
                         origin: runs.Origin = runs.CLI) -> tuple[Accepted, RunReport | None]:
    planned = accept_for_provisioning(settings=settings, user=user, code=code)
    if planned.cloud_api is None:
        return planned.accepted, None
    report = provision_batch(settings=settings, user=user, bid=planned.accepted.bid, cloud_api=planned.cloud_api,
                             progress=progress, action=Action.AUTO_PROVISION, origin=origin)
    return planned.accepted, report
