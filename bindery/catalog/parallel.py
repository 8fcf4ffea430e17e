"""Verification on every core: the spooled chunks of a reel verified in worker processes.

Each worker gets the trust anchors once (as DER, at start) and then chunk numbers; it reads the
chunk's raw entries from the spool, writes the verified ones back to the spool and answers only the
chunk's verdict, so little crosses between processes. Workers come from a fork server that imported
the verifier once (no fork of a process with threads, no import per worker). One chunk, or one
worker, stays in this process."""

from __future__ import annotations

import multiprocessing
import threading
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
    with _new_pool(anchors, min(workers, len(chunks))) as pool:
        jobs = [pool.submit(_verify, plan, index, at) for index in chunks]
        verdicts = []
        for job in jobs:
            verdicts.append(job.result())
            done(verdicts[-1])
        return verdicts


def _new_pool(anchors: list[tuple[str, bytes]], workers: int) -> ProcessPoolExecutor:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["bindery.catalog.parallel"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start, initargs=(anchors,))


_shared: tuple[tuple[tuple[str, bytes], ...], int, ProcessPoolExecutor] | None = None
_shared_lock = threading.Lock()


def verify_in_workers(*, plan: importer.ReelPlan, index: int, anchors: list[tuple[str, bytes]], at: datetime,
                      workers: int) -> importer.ChunkVerdict:
    """One chunk's verdict from this process's verifying workers, for callers that hand chunks in one at
    a time from several threads — the import-reel flow's verify tasks, which run on Prefect's thread
    pool and would otherwise share one core. The workers are made on first use and kept until
    :func:`release_workers` (made anew if the anchors changed); a reel of one chunk stays in this
    process."""
    global _shared
    workers = min(workers, len(plan.raw_chunks))
    if workers <= 1:
        return importer.verify_chunk(plan=plan, index=index, anchors=anchors_from(anchors), at=at)
    key = tuple(anchors)
    with _shared_lock:
        if _shared is None or _shared[0] != key or _shared[1] < workers:
            if _shared is not None:
                _shared[2].shutdown(wait=False)
            _shared = (key, workers, _new_pool(anchors, workers))
        pool = _shared[2]
    return pool.submit(_verify, plan, index, at).result()


def release_workers() -> None:
    """Ends this process's verifying workers (the import flow, when its reel is done)."""
    global _shared
    with _shared_lock:
        if _shared is not None:
            _shared[2].shutdown(wait=True)
            _shared = None
