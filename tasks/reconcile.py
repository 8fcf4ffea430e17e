"""Tasks of the reconcile flow: one per batch and target, so a slow target does not hide the others."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from bindery import reconcile
from bindery.db import session_scope
from bindery.errors import NotFound
from bindery.runs import Origin
from bindery.settings import get_settings


@task(name="find-targets", cache_policy=NO_CACHE)
def find_targets(account: str | None) -> list[tuple[str, str, str]]:
    """(account, BID, Product Cloud API) of every bound batch and every target it has records for."""
    with session_scope(get_settings()) as session:
        return [(name, batch.bid, api.name) for name, batch, api in reconcile.bound_targets(session, account)]


@task(name="reconcile-target", cache_policy=NO_CACHE, task_run_name="reconcile-{bid}-{cloud_api}")
def reconcile_target(account: str, bid: str, cloud_api: str, repair: bool,
                     origin: Origin) -> reconcile.Drift | None:
    """None when the batch or the target is no longer the account's since the targets were listed (the batch
    was accepted by another account, the API removed): nothing of it is the account's to check."""
    settings = get_settings()
    try:
        batch, api = reconcile.load_target(settings=settings, bid=bid, cloud_api_name=cloud_api, account=account)
    except NotFound:
        return None
    return reconcile.reconcile_target(settings=settings, account=account, batch=batch, api=api, fix=repair,
                                      started_by="schedule" if origin.via == "schedule" else "prefect",
                                      origin=origin)
