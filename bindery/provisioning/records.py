"""Provisioning records: created pending, marked provisioned only after the target confirmed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, update
from sqlmodel import Session, col, select

from bindery.clouds.base import DeviceCert, DeviceResult, Outcome
from bindery.models.catalog import Device
from bindery.models.clouds import CloudApi
from bindery.models.provisioning import ProvisioningRecord
from bindery.provisioning.status import FAILED, PENDING, PROVISIONED, REMOVED, TO_DO  # what each means


def ensure_records(*, session: Session, batch_id: int, api_id: int) -> int:
    """A pending record for every device of the batch that has none for this target."""
    known = select(ProvisioningRecord.device_id).where(col(ProvisioningRecord.cloud_api_id) == api_id,
                                                        col(ProvisioningRecord.batch_id) == batch_id)
    missing = select(Device.id).where(Device.batch_id == batch_id, col(Device.id).not_in(known))
    rows = [{"device_id": device_id, "batch_id": batch_id, "cloud_api_id": api_id, "status": PENDING,
             "attempts": 0} for device_id in session.exec(missing).all()]
    for start in range(0, len(rows), 1000):
        session.execute(insert(ProvisioningRecord), rows[start:start + 1000])
    return len(rows)


def chunk_bounds(*, session: Session, batch_id: int, api_id: int, size: int,
                 within: tuple[int, int] | None = None) -> list[tuple[int, int]]:
    """(first, last) Device.id of each chunk of not-yet-provisioned devices, in id order (only those
    between ``within``'s bounds, for a shard)."""
    query = select(ProvisioningRecord.device_id).where(
        col(ProvisioningRecord.batch_id) == batch_id, col(ProvisioningRecord.cloud_api_id) == api_id,
        col(ProvisioningRecord.status) != PROVISIONED)
    if within is not None:
        query = query.where(col(ProvisioningRecord.device_id).between(*within))
    ids = session.exec(query.order_by(col(ProvisioningRecord.device_id))).all()
    return [(ids[i], ids[min(i + size, len(ids)) - 1]) for i in range(0, len(ids), size)]


def chunk_devices(*, session: Session, batch_id: int, api_id: int, bounds: tuple[int, int],
                  include_failed: bool = True) -> list[tuple[int, DeviceCert]]:
    statuses = list(TO_DO) if include_failed else [PENDING, REMOVED]
    rows = session.exec(
        select(Device.id, Device.device_id, Device.certificate_pem, Device.fingerprint_sha256)
        .join(ProvisioningRecord, col(ProvisioningRecord.device_id) == col(Device.id))
        .where(col(ProvisioningRecord.cloud_api_id) == api_id, col(ProvisioningRecord.batch_id) == batch_id,
               col(ProvisioningRecord.status).in_(statuses), col(Device.id) >= bounds[0], col(Device.id) <= bounds[1])
        .order_by(col(Device.id))).all()
    return [(int(r[0] or 0), DeviceCert(r[1], r[2], r[3])) for r in rows]


def mark_attempt(*, session: Session, api_id: int, device_pks: Sequence[int]) -> None:
    now = datetime.now(UTC)
    where = (col(ProvisioningRecord.cloud_api_id) == api_id, col(ProvisioningRecord.device_id).in_(device_pks))
    session.execute(update(ProvisioningRecord).where(*where, col(ProvisioningRecord.first_attempt_at).is_(None))
                    .values(first_attempt_at=now))
    session.execute(update(ProvisioningRecord).where(*where)
                    .values(attempts=ProvisioningRecord.attempts + 1, last_attempt_at=now))


def apply_results(*, session: Session, api_id: int, pks: dict[str, int], results: Sequence[DeviceResult]) -> None:
    now = datetime.now(UTC)
    for result in results:
        where = (col(ProvisioningRecord.cloud_api_id) == api_id,
                 col(ProvisioningRecord.device_id) == pks[result.device_id])
        if result.outcome is Outcome.FAILED:
            status = FAILED if result.error_class == "permanent" else PENDING
            values: dict[str, object] = {"status": status, "last_error": result.error,
                                         "error_class": result.error_class}
        else:
            values = {"status": PROVISIONED, "external_ref": result.external_ref, "endpoint": result.endpoint,
                      "topic": result.topic, "policy_applied": result.policy_applied,
                      "provisioned_at": now, "last_error": None, "error_class": None}
        session.execute(update(ProvisioningRecord).where(*where).values(**values))


def record_chunk_error(*, session: Session, api_id: int, device_pks: Sequence[int], error: str,
                       error_class: str) -> None:
    status = PENDING if error_class == "transient" else FAILED
    session.execute(update(ProvisioningRecord).where(
        col(ProvisioningRecord.cloud_api_id) == api_id, col(ProvisioningRecord.device_id).in_(device_pks),
        col(ProvisioningRecord.status) != PROVISIONED).values(status=status, last_error=error, error_class=error_class))


def pending_between(*, session: Session, batch_id: int, api_id: int, first: int, last: int) -> int:
    """Devices of a Device.id range still waiting (not provisioned, not failed for good)."""
    return int(session.exec(select(func.count()).select_from(ProvisioningRecord).where(
        col(ProvisioningRecord.batch_id) == batch_id, col(ProvisioningRecord.cloud_api_id) == api_id,
        col(ProvisioningRecord.device_id).between(first, last),
        col(ProvisioningRecord.status).in_([PENDING, REMOVED]))).one())


def status_counts(*, session: Session, batch_id: int, api_id: int) -> dict[str, int]:
    rows = session.exec(select(ProvisioningRecord.status, func.count()).where(
        col(ProvisioningRecord.batch_id) == batch_id, col(ProvisioningRecord.cloud_api_id) == api_id)
        .group_by(ProvisioningRecord.status)).all()
    return {str(status): int(count) for status, count in rows}


def _of_account(account_id: int | None) -> tuple[Any, ...]:
    """Only one account's Product Cloud APIs: a transferred batch's records in its earlier owners' APIs are
    their history, not its current state."""
    return () if account_id is None else (col(CloudApi.account_id) == account_id,)


def by_target(*, session: Session, batch_id: int, status: str, account_id: int | None = None) -> dict[str, int]:
    """How many of the batch's devices are in ``status``, per Product Cloud API (those with any; only the
    account's APIs when given)."""
    rows = session.exec(select(CloudApi.name, func.count()).join(
        ProvisioningRecord, col(ProvisioningRecord.cloud_api_id) == col(CloudApi.id)).where(
        col(ProvisioningRecord.batch_id) == batch_id, col(ProvisioningRecord.status) == status,
        *_of_account(account_id)).group_by(CloudApi.name)).all()
    return {str(name): int(count) for name, count in rows}


def provisioned_by_target(*, session: Session, batch_id: int, account_id: int | None = None) -> dict[str, int]:
    return by_target(session=session, batch_id=batch_id, status=PROVISIONED, account_id=account_id)


POLICY_WARNING = "provisioned, but the receiver did not apply its IoT policy: the device cannot connect"


def _warned() -> tuple[Any, ...]:
    return (col(ProvisioningRecord.status) == PROVISIONED, col(ProvisioningRecord.policy_applied).is_(False))


def warnings_by_target(*, session: Session, batch_id: int, account_id: int | None = None) -> dict[str, int]:
    """Provisioned devices whose receiver said its policy was not applied, per Product Cloud API."""
    rows = session.exec(select(CloudApi.name, func.count()).join(
        ProvisioningRecord, col(ProvisioningRecord.cloud_api_id) == col(CloudApi.id)).where(
        col(ProvisioningRecord.batch_id) == batch_id, *_warned(), *_of_account(account_id))
        .group_by(CloudApi.name)).all()
    return {str(name): int(count) for name, count in rows}


def warned_devices(*, session: Session, batch_id: int, api_id: int, limit: int = 1000) -> list[str]:
    rows = session.exec(select(Device.device_id).join(
        ProvisioningRecord, col(ProvisioningRecord.device_id) == col(Device.id)).where(
        col(ProvisioningRecord.batch_id) == batch_id, col(ProvisioningRecord.cloud_api_id) == api_id,
        *_warned()).order_by(Device.device_id).limit(limit)).all()
    return [str(device_id) for device_id in rows]


def failures(*, session: Session, batch_id: int, api_id: int, limit: int = 1000) -> list[tuple[str, str]]:
    """The failed devices (first ``limit`` by device id) with their last error."""
    rows = session.exec(select(Device.device_id, ProvisioningRecord.last_error).join(
        ProvisioningRecord, col(ProvisioningRecord.device_id) == col(Device.id)).where(
        col(ProvisioningRecord.batch_id) == batch_id, col(ProvisioningRecord.cloud_api_id) == api_id,
        col(ProvisioningRecord.status) == FAILED).order_by(Device.device_id).limit(limit)).all()
    return [(str(d), str(e or "no error recorded")) for d, e in rows]
