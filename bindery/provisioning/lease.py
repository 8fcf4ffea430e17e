"""One provisioning run per batch and target at a time: a lease row, renewed as chunks finish.

A second run waits until the lease is free (or expired), then is refused clearly. A holder is a
process *and* a run (``host:pid:run``, then ``:flow-run-id`` when a Prefect flow run holds it). A lease
is taken over at once when its holder process is gone (same host, dead pid), when the holder is this
very process but no run of it still holds the lease (a web job whose release failed in a database
outage), or when the holder is on another host and Prefect says its flow run is over (Crashed: the
zombie automation or the worker saw its process die), so a rerun never waits for the expiry there.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bindery.errors import BinderyError
from bindery.models.provisioning import RunLease


class Busy(BinderyError):
    """Another run holds the batch and target."""


_live_holders: set[str] = set()


FlowRunGone = Callable[[str], bool]


def _never(_flow_run_id: str) -> bool:
    return False


def new_holder(flow_run_id: str | None = None) -> str:
    """A holder for a new run of this process, live until ``forget``; it names the Prefect flow run
    running it, if one does."""
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    if flow_run_id:
        holder += f":{flow_run_id}"
    _live_holders.add(holder)
    return holder


def flow_run_of(holder: str) -> str | None:
    """The Prefect flow run a holder names (None for the CLI and the console's own jobs)."""
    parts = holder.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else None


def forget(holder: str) -> None:
    """The run is over in this process, whether or not its release reached the database."""
    _live_holders.discard(holder)


def holder_is_dead(holder: str, gone: FlowRunGone = _never) -> bool:
    """On this host the process table decides; on another, Prefect's word on the holder's flow run."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        flow_run = flow_run_of(holder)
        return flow_run is not None and gone(flow_run)
    if int(pid) == os.getpid():
        return holder not in _live_holders
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _try_acquire(session: Session, batch_id: int, api_id: int, holder: str, seconds: float,
                 gone: FlowRunGone) -> RunLease | None:
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=seconds)
    current = session.exec(select(RunLease).where(RunLease.batch_id == batch_id,
                                                  col(RunLease.cloud_api_id) == api_id)).first()
    if current is None:
        lease = RunLease(batch_id=batch_id, cloud_api_id=api_id, holder=holder, expires_at=expires)
        try:
            with session.begin_nested():
                session.add(lease)
        except IntegrityError:
            session.rollback()
            return None
        session.commit()
        return lease
    if current.holder == holder or current.expires_at < now or holder_is_dead(current.holder, gone):
        taken = session.execute(update(RunLease).where(col(RunLease.id) == current.id,
                                                       col(RunLease.holder) == current.holder)
                                .values(holder=holder, expires_at=expires))
        session.commit()
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            session.refresh(current)
            return current
    return None


def acquire(*, session: Session, batch_id: int, api_id: int, holder: str, seconds: float, wait: float,
            what: str, gone: FlowRunGone = _never) -> None:
    """Take the lease, waiting up to ``wait`` seconds; ``gone`` says whether a flow run is over (Prefect's
    word, asked only about a holder on another host)."""
    deadline = time.monotonic() + wait
    while True:
        if _try_acquire(session, batch_id, api_id, holder, seconds, gone) is not None:
            return
        if time.monotonic() >= deadline:
            current = session.exec(select(RunLease).where(RunLease.batch_id == batch_id,
                                                          col(RunLease.cloud_api_id) == api_id)).first()
            until = f" until {current.expires_at:%H:%M:%S} UTC" if current else ""
            raise Busy(f"{what} is being provisioned by another run{until}; try again later")
        session.rollback()
        time.sleep(0.5)


def renew(*, session: Session, batch_id: int, api_id: int, holder: str, seconds: float) -> bool:
    mine = (col(RunLease.batch_id) == batch_id, col(RunLease.cloud_api_id) == api_id, col(RunLease.holder) == holder)
    result = session.execute(update(RunLease).where(*mine)
                             .values(expires_at=datetime.now(UTC) + timedelta(seconds=seconds)))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release(*, session: Session, batch_id: int, api_id: int, holder: str) -> None:
    mine = (col(RunLease.batch_id) == batch_id, col(RunLease.cloud_api_id) == api_id, col(RunLease.holder) == holder)
    session.execute(delete(RunLease).where(*mine))
