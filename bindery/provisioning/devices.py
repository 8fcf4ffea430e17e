"""Which devices of a batch are where: one row per device and Product Cloud API, paged by a keyset so a
batch of 100,000 devices never loads at once. Members see their account's batches; others' are unknown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, tuple_
from sqlmodel import Session, col

from bindery.access import Actor, owned_batch
from bindery.errors import BadInput
from bindery.models.catalog import Device
from bindery.models.clouds import CloudApi
from bindery.models.provisioning import ProvisioningRecord
from bindery.provisioning.records import FAILED, PENDING, PROVISIONED, REMOVED

STATUSES = (PENDING, PROVISIONED, FAILED, REMOVED)
MAX_PAGE = 1000
COLUMNS = ("device_id", "cloud_api", "status", "attempts", "last_error", "error_class", "external_ref", "endpoint",
           "topic", "policy_applied", "provisioned_at", "last_attempt_at")


@dataclass(frozen=True)
class DevicePage:
    rows: list[dict[str, Any]]
    next_after: str | None  # pass back as ``after`` for the next page; None on the last one


def _cursor(after: str | None) -> tuple[int, int] | None:
    if not after:
        return None
    device, _, api = after.partition(".")
    if not (device.isdigit() and api.isdigit()):
        raise BadInput(f"after: {after[:40]!r} is not a cursor this listing gave")
    return int(device), int(api)


def device_page(*, session: Session, actor: Actor, bid: str, cloud_api: str | None = None,
                status: str | None = None, after: str | None = None, limit: int = 100) -> DevicePage:
    batch, _binding = owned_batch(session=session, actor=actor, bid=bid)
    if status is not None and status not in STATUSES:
        raise BadInput(f"status: {status[:40]!r} is not one of {', '.join(STATUSES)}")
    if not 1 <= limit <= MAX_PAGE:
        raise BadInput(f"limit: {limit} is not from 1 to {MAX_PAGE}")
    query = (select(col(Device.id), col(CloudApi.id), col(Device.device_id), col(CloudApi.name), ProvisioningRecord)
             .join(ProvisioningRecord, col(ProvisioningRecord.device_id) == col(Device.id))
             .join(CloudApi, col(CloudApi.id) == col(ProvisioningRecord.cloud_api_id))
             .where(col(ProvisioningRecord.batch_id) == batch.id, col(CloudApi.account_id) == actor.account_id))
    if cloud_api:
        query = query.where(col(CloudApi.name) == cloud_api)
    if status:
        query = query.where(col(ProvisioningRecord.status) == status)
    cursor = _cursor(after)
    if cursor is not None:
        query = query.where(tuple_(col(Device.id), col(CloudApi.id)) > tuple_(*cursor))
    found = session.execute(query.order_by(col(Device.id), col(CloudApi.id)).limit(limit + 1)).all()
    rows = []
    for _pk, _api_pk, device_id, api_name, record in found[:limit]:
        row = record.model_dump(include=set(COLUMNS))
        row.update(device_id=device_id, cloud_api=api_name)
        rows.append({name: _plain(row.get(name)) for name in COLUMNS})
    last = found[limit - 1] if len(found) > limit else None
    return DevicePage(rows, f"{last[0]}.{last[1]}" if last else None)


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
