"""One provisioning run per batch and target at a time: a lease row, renewed as chunks finish.

A second run waits until the lease is free (or expired), then is refused clearly. A holder is a
process *and* a run (``host:pid:run``). A lease is taken over at once when its holder process is gone
(same host, dead pid), or when the holder is this very process but no run of it still holds the lease
(a web job whose release failed in a database outage), so a rerun never waits for the expiry there.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bindery.errors import BinderyError
from bindery.models.provisioning import RunLease


class Busy(BinderyError):
    """Another run holds the batch and target."""


_live_holders: set[str] = set()


def new_holder() -> str:
    """A holder for a new run of this process, live until ``forget``."""
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    _live_holders.add(holder)
    return holder


def forget(holder: str) -> None:
    """The run is over in this process, whether or not its release reached the database."""
    _live_holders.discard(holder)


def _holder_is_dead(holder: str) -> bool:
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return holder not in _live_holders
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _try_acquire(session: Session, batch_id: int, api_id: int, holder: str, seconds: float) -> RunLease | None:
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
    if current.holder == holder or current.expires_at < now or _holder_is_dead(current.holder):
        taken = session.execute(update(RunLease).where(col(RunLease.id) == current.id,
                                                       col(RunLease.holder) == current.holder)
                                .values(holder=holder, expires_at=expires))
        session.commit()
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            session.refresh(current)
            return current
    return None


def acquire(*, session: Session, batch_id: int, api_id: int, holder: str, seconds: float, wait: float,
            what: str) -> None:
    deadline = time.monotonic() + wait
    while True:
        if _try_acquire(session, batch_id, api_id, holder, seconds) is not None:
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
