"""Tasks of the import-reel flow: read, verify one chunk, store."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from bindery import audit
from bindery.catalog import importer, parallel
from bindery.catalog.trust import anchor_ders
from bindery.db import session_scope
from bindery.settings import get_settings


@task(name="read-reel", cache_policy=NO_CACHE)
def read_reel(path: str, bid: str | None, fmt: str, slot: str) -> importer.ReelPlan:
    return importer.read_reel(settings=get_settings(), path=Path(path), bid=bid, fmt=fmt, slot=slot)


@task(name="verify-chunk", cache_policy=NO_CACHE, task_run_name="verify-chunk-{index}")
def verify_chunk(plan: importer.ReelPlan, index: int, at: datetime) -> importer.ChunkVerdict:
    """The chunk is verified in one of the flow process's worker processes (every core; the task
    itself only waits on a thread)."""
    settings = get_settings()
    with session_scope(settings) as session:
        anchors = anchor_ders(session=session)
    return parallel.verify_in_workers(plan=plan, index=index, anchors=anchors, at=at,
                                      workers=settings.verify_workers)


@task(name="store-reel", cache_policy=NO_CACHE)
def store_reel(plan: importer.ReelPlan, verdicts: list[importer.ChunkVerdict], skip_invalid: bool,
               actor: str | None) -> importer.ImportReport:
    return importer.store_reel(settings=get_settings(), plan=plan, verdicts=verdicts, skip_invalid=skip_invalid,
                               actor=actor or audit.operator_name())
