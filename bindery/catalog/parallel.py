"""Verification on every core: the spooled chunks of a reel verified in worker processes.

Each worker gets the trust anchors once (as DER, at start) and then chunk numbers; it reads the
chunk's raw entries from the spool, writes the verified ones back to the spool and answers only the
chunk's verdict, so little crosses between processes. Workers come from a fork server that imported
the verifier once (no fork of a process with threads, no import per worker). One chunk, or one
worker, stays in this process."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime

from bindery.catalog import importer
from bindery.catalog.trust import Anchors, anchors_from

_anchors: Anchors | None = None  # a worker process's own, built once by _start


def _start(ders: list[tuple[str, bytes]]) -> None:
    global _anchors
    _anchors = anchors_from(ders)


def _verify(plan: importer.ReelPlan, index: int, at: datetime) -> importer.ChunkVerdict:
    assert _anchors is not None
    return importer.verify_chunk(plan=plan, index=index, anchors=_anchors, at=at)


def verify_chunks(*, plan: importer.ReelPlan, anchors: list[tuple[str, bytes]], at: datetime, workers: int,
                  done: Callable[[importer.ChunkVerdict], None]) -> list[importer.ChunkVerdict]:
    """Every chunk's verdict, in chunk order; ``done`` hears each as it comes (for progress)."""
    chunks = range(len(plan.raw_chunks))
    if workers <= 1 or len(chunks) <= 1:
        _start(anchors)
        verdicts = []
        for index in chunks:
            verdicts.append(_verify(plan, index, at))
            done(verdicts[-1])
        return verdicts
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["bindery.catalog.parallel"])
    with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=context, initializer=_start,
                             initargs=(anchors,)) as pool:
        jobs = [pool.submit(_verify, plan, index, at) for index in chunks]
        verdicts = []
        for job in jobs:
            verdicts.append(job.result())
            done(verdicts[-1])
        return verdicts
