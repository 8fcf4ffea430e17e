"""Tasks of the bind-batch and export-manifest flows."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from bindery import binding, manifest
from bindery.access import actor_for
from bindery.db import session_scope
from bindery.settings import get_settings


@task(name="bind-batch", cache_policy=NO_CACHE)
def bind_batch(bid: str, user: str) -> binding.BindOutcome:
    with session_scope(get_settings()) as session:
        return binding.bind(session=session, actor=actor_for(session=session, email=user), bid=bid)


@task(name="export-manifest", cache_policy=NO_CACHE)
def export_manifest(bid: str, user: str, out: str) -> manifest.ManifestReport:
    settings = get_settings()
    with session_scope(settings) as session:
        return manifest.export_manifest(session=session, actor=actor_for(session=session, email=user), bid=bid,
                                        out=out, chunk_size=settings.manifest_chunk_size)


@task(name="batch-view", cache_policy=NO_CACHE)
def batch_view(bid: str, user: str) -> dict[str, object]:
    with session_scope(get_settings()) as session:
        return binding.batch_view(session=session, actor=actor_for(session=session, email=user), bid=bid)
