"""What a provisioning record's status says: the one definition records, counters, filters, the API, the
CLI, the console, artifacts and alerts all read.

- ``pending``: not tried yet, or a run is on it now (between two tries of a transient error it stays pending).
- ``provisioned``: the target confirmed it.
- ``failed``: a run gave up on it: the target refused it for good, or its retries were used up.
  ``last_error``, ``error_class`` (transient or permanent) and ``attempts`` say why and how often.
- ``removed``: taken out of the target again (or only marked so, with ``--forget``).

A run settles the devices it tried when it ends (:func:`settle`), so no record is left pending with an
error once no run is on it; migration 0012 settled the records earlier runs left so. A run that crashed
(killed with -9, its host lost) never ends: recovery settles what it tried instead (:func:`settle_lost`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, not_, update
from sqlmodel import Session, col, select

from bindery.models.provisioning import ProvisioningRecord

PENDING, PROVISIONED, FAILED, REMOVED = "pending", "provisioned", "failed", "removed"
STATUSES = (PENDING, PROVISIONED, FAILED, REMOVED)
TO_DO = (PENDING, REMOVED, FAILED)  # what a run (re)tries: everything the target does not hold


def settle(*, session: Session, batch_id: int, api_id: int) -> int:
    """The run on (batch, target) has ended: every device it tried and could not provision is failed
    (its last error, class and attempts stay). Returns how many it settled."""
    result = session.execute(update(ProvisioningRecord).where(
        col(ProvisioningRecord.batch_id) == batch_id, col(ProvisioningRecord.cloud_api_id) == api_id,
        col(ProvisioningRecord.status) == PENDING, col(ProvisioningRecord.last_error).is_not(None))
        .values(status=FAILED))
    return int(getattr(result, "rowcount", 0) or 0)


LOST = "the run crashed before the target answered (process lost); a new run tries it again"


def settle_lost(*, session: Session, batch_id: int, api_id: int, since: datetime,
                spare: Sequence[tuple[int, int]] = ()) -> int:
    """A crashed run on (batch, target) that started at ``since`` ended without settling: every device it
    tried (an attempt since then) and left pending is failed; one it was waiting on the target for gets
    :data:`LOST` as its error (transient: a rerun may well succeed), one with an error keeps it. Devices in
    ``spare``'s Device.id ranges (held by a live shard run) are left to it. Call only while holding the
    (batch, target) lease, so no live run is on them. Returns how many it settled."""
    tried = (col(ProvisioningRecord.batch_id) == batch_id, col(ProvisioningRecord.cloud_api_id) == api_id,
             col(ProvisioningRecord.status) == PENDING, col(ProvisioningRecord.last_attempt_at) >= since,
             *(not_(col(ProvisioningRecord.device_id).between(first, last)) for first, last in spare))
    lost = session.execute(update(ProvisioningRecord).where(*tried, col(ProvisioningRecord.last_error).is_(None))
                           .values(status=FAILED, last_error=LOST, error_class="transient"))
    erred = session.execute(update(ProvisioningRecord).where(*tried, col(ProvisioningRecord.last_error).is_not(None))
                            .values(status=FAILED))
    return sum(int(getattr(result, "rowcount", 0) or 0) for result in (lost, erred))


@dataclass(frozen=True)
class Reason:
    error: str
    devices: int


def reasons(*, session: Session, batch_id: int, api_id: int, limit: int = 3) -> list[Reason]:
    """The failed devices' errors, the most common first."""
    devices = func.count().label("devices")
    rows = session.exec(select(ProvisioningRecord.last_error, devices).where(
        col(ProvisioningRecord.batch_id) == batch_id, col(ProvisioningRecord.cloud_api_id) == api_id,
        col(ProvisioningRecord.status) == FAILED).group_by(col(ProvisioningRecord.last_error))
        .order_by(devices.desc(), col(ProvisioningRecord.last_error)).limit(limit + 1)).all()
    return [Reason(str(error or "no error recorded"), int(count)) for error, count in rows]


def failure_summary(failed: int, found: list[Reason], limit: int = 3) -> str:
    """"1000 devices failed: connection to https://… failed (ConnectError)"; several causes are counted
    each, the most common first ("3 devices failed: <error> (2 devices); <error> (1 device)")."""
    if failed <= 0:
        return ""
    noun = "device" if failed == 1 else "devices"
    if not found:
        return f"{failed} {noun} failed"
    if len(found) == 1:
        return f"{failed} {noun} failed: {found[0].error}"
    shown = "; ".join(f"{r.error} ({r.devices} {'device' if r.devices == 1 else 'devices'})" for r in found[:limit])
    more = " and other errors" if len(found) > limit else ""
    return f"{failed} {noun} failed: {shown}{more}"
