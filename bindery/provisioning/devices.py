"""Which devices of a batch are where: one row per device and Product Cloud API, paged by a keyset so a
batch of 100,000 devices never loads at once. Members see their account's batches; others' are unknown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlmodel import Session, col

from bindery.access import Actor, owned_batch
from bindery.errors import BadInput
from bindery.models.catalog import Device
from bindery.models.clouds import CloudApi
from bindery.models.provisioning import ProvisioningRecord
from bindery.provisioning.status import FAILED, STATUSES

MAX_PAGE = 1000
COLUMNS = ("device_id", "cloud_api", "status", "attempts", "last_error", "error_class", "external_ref", "endpoint",
           "topic", "policy_applied", "provisioned_at", "last_attempt_at")


@dataclass(frozen=True)
class DevicePage:
    rows: list[dict[str, Any]]
    next_after: str | None  # pass back as ``after`` for the next page; None on the last one


@dataclass(frozen=True)
class Cursor:
    """Where the last page ended; with failed-first ordering also in which part (``f`` the failed ones,
    ``o`` the others), each part in device order, so either is one indexed range scan."""

    part: str
    device: int
    api: int

    def __str__(self) -> str:
        return f"{self.part}.{self.device}.{self.api}" if self.part else f"{self.device}.{self.api}"


def _cursor(after: str | None, failed_first: bool) -> Cursor | None:
    if not after:
        return None
    fields = after.split(".")
    part = fields.pop(0) if failed_first and len(fields) == 3 else ""
    if len(fields) != 2 or not all(f.isdigit() for f in fields) or (failed_first and part not in ("f", "o")):
        raise BadInput(f"after: {after[:40]!r} is not a cursor this listing gave")
    return Cursor(part, int(fields[0]), int(fields[1]))


def device_page(*, session: Session, actor: Actor, bid: str, cloud_api: str | None = None,
                status: str | None = None, after: str | None = None, limit: int = 100,
                failed_first: bool = False) -> DevicePage:
    """One page in device order, or (``failed_first``, without a status filter) the failed devices
    first and then the others."""
    batch, _binding = owned_batch(session=session, actor=actor, bid=bid)
    if status is not None and status not in STATUSES:
        raise BadInput(f"status: {status[:40]!r} is not one of {', '.join(STATUSES)}")
    if not 1 <= limit <= MAX_PAGE:
        raise BadInput(f"limit: {limit} is not from 1 to {MAX_PAGE}")
    failed_first = failed_first and status is None
    device_pk, api_pk = col(ProvisioningRecord.device_id), col(ProvisioningRecord.cloud_api_id)
    query = (select(device_pk, api_pk, col(Device.device_id), col(CloudApi.name), ProvisioningRecord)
             .join(Device, col(Device.id) == device_pk).join(CloudApi, col(CloudApi.id) == api_pk)
             .where(col(ProvisioningRecord.batch_id) == batch.id, col(CloudApi.account_id) == actor.account_id))
    if cloud_api:
        query = query.where(col(CloudApi.name) == cloud_api)
    if status:
        query = query.where(col(ProvisioningRecord.status) == status)
    cursor = _cursor(after, failed_first)
    parts = [("", query)] if not failed_first else [
        ("f", query.where(col(ProvisioningRecord.status) == FAILED)),
        ("o", query.where(col(ProvisioningRecord.status) != FAILED))]
    if cursor is not None and cursor.part == "o":
        parts = parts[1:]
    found: list[tuple[str, Any]] = []
    for part, part_query in parts:
        if cursor is not None and cursor.part == part:
            part_query = part_query.where(tuple_(device_pk, api_pk) > tuple_(cursor.device, cursor.api))
        wanted = limit + 1 - len(found)  # in the order of the index (batch, device, target): no sort
        found += [(part, row) for row in session.execute(
            part_query.order_by(device_pk, api_pk).limit(wanted)).all()]
        if len(found) > limit:
            break
    rows = []
    for _part, (_pk, _api_pk, device_id, api_name, record) in found[:limit]:
        row = record.model_dump(include=set(COLUMNS))
        row.update(device_id=device_id, cloud_api=api_name)
        rows.append({name: _plain(row.get(name)) for name in COLUMNS})
    if len(found) <= limit:
        return DevicePage(rows, None)
    part, last = found[limit - 1]
    return DevicePage(rows, str(Cursor(part, last[0], last[1])))


@dataclass(frozen=True)
class DeviceWindow:
    """A page of the console's device list and where it sits: rows ``start + 1`` to ``start + len(rows)``
    of ``total``. ``recorded`` False: the batch has no provisioning record anywhere yet, so the rows are
    its devices themselves, none provisioned yet."""

    rows: list[dict[str, Any]]
    start: int
    total: int
    recorded: bool


def device_window(*, session: Session, actor: Actor, bid: str, cloud_api: str | None = None,
                  status: str | None = None, search: str | None = None, start: int = 0,
                  limit: int = 50) -> DeviceWindow:
    """One page in device id order (then target name), ``start`` rows in, with the count of all that
    match; ``search`` keeps the device ids containing it (any case). Offset paging, so a page knows its
    position and its previous page; each page is one index-ordered range of the batch."""
    batch, _binding = owned_batch(session=session, actor=actor, bid=bid)
    if status is not None and status not in STATUSES:
        raise BadInput(f"status: {status[:40]!r} is not one of {', '.join(STATUSES)}")
    if not 1 <= limit <= MAX_PAGE:
        raise BadInput(f"limit: {limit} is not from 1 to {MAX_PAGE}")
    if start < 0:
        raise BadInput(f"start: {start} is below 0")
    # records in the account's own APIs only: a transferred batch's earlier owners' records are theirs
    recorded = session.execute(select(col(ProvisioningRecord.id)).join(
        CloudApi, col(CloudApi.id) == col(ProvisioningRecord.cloud_api_id)).where(
        col(ProvisioningRecord.batch_id) == batch.id, col(CloudApi.account_id) == actor.account_id).limit(1)
    ).first() is not None
    matching = func.lower(col(Device.device_id)).contains((search or "").lower(), autoescape=True)
    if not recorded:
        if status or cloud_api:
            return DeviceWindow([], start, 0, recorded=False)
        plain = select(col(Device.device_id)).where(col(Device.batch_id) == batch.id)
        if search:
            plain = plain.where(matching)
        total = session.execute(select(func.count()).select_from(plain.subquery())).scalar_one()
        ids = session.execute(plain.order_by(col(Device.device_id)).offset(start).limit(limit)).scalars().all()
        return DeviceWindow([{**dict.fromkeys(COLUMNS), "device_id": device_id, "status": None, "attempts": 0}
                             for device_id in ids], start, int(total), recorded=False)
    query = (select(col(Device.device_id), col(CloudApi.name), ProvisioningRecord)
             .join(Device, col(Device.id) == col(ProvisioningRecord.device_id))
             .join(CloudApi, col(CloudApi.id) == col(ProvisioningRecord.cloud_api_id))
             .where(col(ProvisioningRecord.batch_id) == batch.id, col(CloudApi.account_id) == actor.account_id))
    if cloud_api:
        query = query.where(col(CloudApi.name) == cloud_api)
    if status:
        query = query.where(col(ProvisioningRecord.status) == status)
    if search:
        query = query.where(matching)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = []
    for device_id, api_name, record in session.execute(
            query.order_by(col(Device.device_id), col(CloudApi.name)).offset(start).limit(limit)).all():
        row = record.model_dump(include=set(COLUMNS))
        row.update(device_id=device_id, cloud_api=api_name)
        rows.append({name: _plain(row.get(name)) for name in COLUMNS})
    return DeviceWindow(rows, start, int(total), recorded=True)


def target_counts(*, session: Session, actor: Actor, bid: str) -> list[dict[str, Any]]:
    """Per Product Cloud API of the account: how many of the batch's devices are in each status."""
    batch, _binding = owned_batch(session=session, actor=actor, bid=bid)
    found = session.execute(
        select(col(CloudApi.name), col(ProvisioningRecord.status), func.count())
        .join(CloudApi, col(CloudApi.id) == col(ProvisioningRecord.cloud_api_id))
        .where(col(ProvisioningRecord.batch_id) == batch.id, col(CloudApi.account_id) == actor.account_id)
        .group_by(col(CloudApi.name), col(ProvisioningRecord.status))).all()
    counts: dict[str, dict[str, Any]] = {}
    for name, state, number in found:
        counts.setdefault(name, {"cloud_api": name, **dict.fromkeys(STATUSES, 0)})[state] = number
    return [counts[name] for name in sorted(counts)]


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
