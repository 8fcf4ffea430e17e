"""Deprovisioning: removing a batch's devices from one Product Cloud API, and the records with them.

aws-iot and azure-iot-hub remove the devices in the target; the interop protocol has no removal, so
for its kinds Bindery only marks its records removed, and only when told to (``forget``) after the
operator removed the devices in the Product Cloud.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import update
from sqlmodel import Session, col, select

from bindery import audit, recovery, runs
from bindery.access import Action, actor_for, owned_batch
from bindery.clouds.base import ConnectorError, Outcome, ProvisionedDevice
from bindery.clouds.config import get_cloud_api, settings_of
from bindery.clouds.connectors import connector_for
from bindery.clouds.kinds import spec_of
from bindery.db import get_engine, session_scope
from bindery.errors import BadInput
from bindery.models.catalog import Device
from bindery.models.clouds import CloudApi
from bindery.models.provisioning import ProvisioningRecord
from bindery.provisioning import lease, records
from bindery.provisioning.quota import pacer_for
from bindery.provisioning.ratelimit import rate_for
from bindery.settings import Settings


@dataclass
class RemovalReport:
    bid: str
    cloud_api: str
    removed: int = 0
    forgotten: bool = False
    failures: list[tuple[str, str]] = field(default_factory=list)


def _provisioned(session: Session, batch_id: int, api_id: int) -> list[tuple[int, ProvisionedDevice]]:
    rows = session.exec(select(Device.id, Device.device_id, Device.fingerprint_sha256, ProvisioningRecord.external_ref)
                        .join(ProvisioningRecord, col(ProvisioningRecord.device_id) == col(Device.id))
                        .where(col(ProvisioningRecord.batch_id) == batch_id,
                               col(ProvisioningRecord.cloud_api_id) == api_id,
                               col(ProvisioningRecord.status) == records.PROVISIONED)
                        .order_by(col(Device.id))).all()
    return [(int(r[0] or 0), ProvisionedDevice(r[1], r[2], r[3])) for r in rows]


def _mark_removed(session: Session, api_id: int, pks: list[int]) -> None:
    session.execute(update(ProvisioningRecord).where(col(ProvisioningRecord.cloud_api_id) == api_id,
                                                     col(ProvisioningRecord.device_id).in_(pks))
                    .values(status=records.REMOVED, external_ref=None, endpoint=None, provisioned_at=None,
                            last_error=None, error_class=None))


def deprovision_batch(*, settings: Settings, user: str, bid: str, cloud_api: str,
                      forget: bool = False, origin: runs.Origin = runs.CLI) -> RemovalReport:
    with session_scope(settings) as session:
        actor = actor_for(session=session, email=user)
        batch, _binding = owned_batch(session=session, actor=actor, bid=bid, action=Action.PROVISION)
        api = get_cloud_api(session=session, actor=actor, name=cloud_api, action=Action.PROVISION)
        assert batch.id is not None and api.id is not None
        batch_id, api_id, kind, email = batch.id, api.id, api.kind, actor.email
        rate = rate_for(kind, settings_of(api).get("quota"), settings_of(api).get("pace"))
    removal = spec_of(kind).removal
    if not removal.supported and not forget:
        raise BadInput.with_fix(lambda fix: removal.refusal.replace("{name}", cloud_api).replace("{fix}", fix),
                                cli="run deprovision again with --forget", page="deprovision again (records only)",
                                api="send it again with forget true")
    holder = lease.new_holder(origin.flow_run_id)
    with Session(get_engine(settings)) as session:
        lease.acquire(session=session, batch_id=batch_id, api_id=api_id, holder=holder, seconds=settings.lease_seconds,
                      wait=settings.lease_wait_seconds, what=f"batch {bid} in {cloud_api}", gone=recovery.flow_run_over)
    report = RemovalReport(bid, cloud_api, forgotten=forget)
    run_id: int | None = None
    done = False
    try:
        with session_scope(settings) as session:
            replaced = runs.close_abandoned(session=session, kind=runs.DEPROVISION, batch_id=batch_id, api_id=api_id,
                                            crashed=recovery.flow_run_crashed)
            run_id = runs.begin(session=session, kind=runs.DEPROVISION, batch_id=batch_id, bid=bid, api_id=api_id,
                                api_name=cloud_api, started_by=email, origin=origin, replaces_run_id=replaced)
        with Session(get_engine(settings)) as session:
            devices = _provisioned(session, batch_id, api_id)
            if forget:
                _mark_removed(session, api_id, [pk for pk, _ in devices])
                report.removed = len(devices)
                session.commit()
            else:
                _remove(settings, session, session.get(CloudApi, api_id), devices, rate, report)  # type: ignore[arg-type]
        done = True
    finally:
        with session_scope(settings) as session:
            lease.release(session=session, batch_id=batch_id, api_id=api_id, holder=holder)
            audit.record(session=session, actor=email, action="deprovision", subject=bid, cloud_api=cloud_api,
                         removed=report.removed, failed=len(report.failures), forget=forget)
            runs.finish(session=session, run_id=run_id, ok=done and not report.failures,
                        counts={"removed": report.removed, "failed": len(report.failures)},
                        message=f"{report.removed} devices removed from {cloud_api}" + (
                            " (records only)" if forget else "") + (
                            f"; {len(report.failures)} still there" if report.failures else ""))
    return report


def _remove(settings: Settings, session: Session, api: CloudApi, devices: list[tuple[int, ProvisionedDevice]],
            rate: float, report: RemovalReport) -> None:
    api_id = api.id or 0
    connector = connector_for(session=session, settings=settings, api=api)
    session.commit()  # no transaction open while waiting for the pace (it writes the shared quota row)
    bucket = pacer_for(settings, api_id, rate)
    try:
        size = settings.provision_chunk_size
        for start in range(0, len(devices), size):
            chunk = devices[start:start + size]
            bucket.acquire(len(chunk))
            pks = {device.device_id: pk for pk, device in chunk}
            try:
                results = connector.deprovision([device for _, device in chunk])
            except ConnectorError as exc:
                report.failures += [(device.device_id, str(exc)) for _, device in chunk]
                continue
            removed = [pks[r.device_id] for r in results if r.outcome is not Outcome.FAILED]
            _mark_removed(session, api_id, removed)
            session.commit()
            report.removed += len(removed)
            report.failures += [(r.device_id, r.error or "") for r in results if r.outcome is Outcome.FAILED]
    finally:
        connector.close()
