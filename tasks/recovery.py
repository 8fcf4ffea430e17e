"""Task of the recover-crashed-run flow."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from bindery import recovery
from bindery.settings import get_settings


@task(name="recover-crashed-run", cache_policy=NO_CACHE)
def recover(flow_run_id: str) -> str:
    return recovery.recover(get_settings(), flow_run_id)
