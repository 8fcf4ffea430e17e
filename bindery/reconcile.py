"""Reconciliation: what each Product Cloud really holds against Bindery's records, and the drift.

For every bound batch and every target it has records for: recount the stored counters, ask the
target with list calls (interop targets cannot be asked: their figures come from the records), and
classify per device — recorded provisioned but missing; present but not recorded; certificate
inactive or device disabled; thumbprint mismatch. With ``repair``, re-provision the missing and record
the unrecorded; without it nothing in any target changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select as sa_select
from sqlalchemy import update
from sqlmodel import Session, col, select

from bindery import alerts, audit, runs
from bindery.access import batch_held_by, on_offer
from bindery.accounts import find_account
from bindery.clouds.base import DeviceKey
from bindery.clouds.connectors import connector_for
from bindery.db import get_engine, session_scope
from bindery.errors import BinderyError, NotFound
from bindery.models.accounts import Account, Binding
from bindery.models.catalog import Batch, Device
from bindery.models.clouds import CloudApi
from bindery.models.provisioning import ProvisioningRecord
from bindery.provisioning import records
from bindery.provisioning.run import start_run
from bindery.settings import Settings


@dataclass
class Drift:
    account: str
    bid: str
    cloud_api: str
    kind: str
    checked: bool
    expected: int
    present: int
    missing: list[str] = field(default_factory=list)
    unrecorded: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    repaired: dict[str, int] = field(default_factory=dict)
    not_repaired: str | None = None  # why --repair left this target as it was found (a run holds it, on offer)

    @property
    def has_drift(self) -> bool:
        return bool(self.missing or self.unrecorded or self.disabled or self.mismatched)

    def findings(self) -> dict[str, list[str]]:
        return {"missing": self.missing, "unrecorded": self.unrecorded, "disabled": self.disabled,
                "mismatched": self.mismatched}

    def counts(self) -> dict[str, int]:
        """Per kind of drift, and ``drift``: the devices with any (the trend's figure)."""
        drifted = set(self.missing) | set(self.unrecorded) | set(self.disabled) | set(self.mismatched)
        return {"expected": self.expected, "present": self.present, "drift": len(drifted),
                **{kind: len(ids) for kind, ids in self.findings().items()}, **self.repaired}

    def summary(self) -> str:
        if not self.checked:
            return "records only: interop targets cannot be asked"
        if not self.has_drift:
            return f"in sync: {self.present} of {self.expected} present"
        said = "drift: " + ", ".join(f"{len(ids)} {kind}" for kind, ids in self.findings().items() if ids)
        return said + (f"; not repaired: {self.not_repaired}" if self.not_repaired else "")

    def as_json(self) -> dict[str, Any]:
        return {
            "account": self.account, "bid": self.bid, "cloud_api": self.cloud_api, "kind": self.kind,
            "checked": self.checked, "note": None if self.checked else "interop targets cannot be asked: "
            "figures from the records", "expected": self.expected, "present": self.present,
            "missing": self.missing, "unrecorded": self.unrecorded, "disabled": self.disabled,
            "mismatched": self.mismatched, "repaired": self.repaired, "not_repaired": self.not_repaired,
        }


def bound_targets(session: Session, account: str | None) -> list[tuple[str, Batch, CloudApi]]:
    """(account, batch, target) of every bound batch and every target of its account it has records for (a
    transferred batch's records in an earlier owner's targets are that owner's history); corrects the
    stored bound counters on the way."""
    query = (select(Account.name, Batch, Binding).join(Binding, col(Binding.batch_id) == col(Batch.id))
             .join(Account, col(Account.id) == col(Binding.account_id)).order_by(Account.name, Batch.bid))
    if account is not None:  # its name in any case, as everywhere an account is named
        owner = find_account(session, account)
        if owner is None:
            raise NotFound(f"unknown account {account}")
        query = query.where(col(Account.id) == owner.id)
    found: list[tuple[str, Batch, CloudApi]] = []
    for name, batch, binding in session.exec(query).all():
        if binding.bound_count != batch.device_count:  # the stored counter follows the catalog
            binding.bound_count = batch.device_count
            session.add(binding)
        api_ids = session.exec(select(ProvisioningRecord.cloud_api_id).join(
            CloudApi, col(CloudApi.id) == col(ProvisioningRecord.cloud_api_id)).where(
            col(ProvisioningRecord.batch_id) == batch.id, col(CloudApi.account_id) == binding.account_id)
            .distinct()).all()
        for api_id in sorted(api_ids):
            api = session.get(CloudApi, api_id)
            if api is not None:
                found.append((name, batch, api))
    return found


def _devices(session: Session, batch_id: int, api_id: int) -> list[tuple[int, DeviceKey, str]]:
    rows = session.execute(sa_select(col(Device.id), col(Device.device_id), col(Device.fingerprint_sha256),
                                     col(ProvisioningRecord.status), col(Device.subject_cn))
                        .join(ProvisioningRecord, col(ProvisioningRecord.device_id) == col(Device.id))
                        .where(col(ProvisioningRecord.batch_id) == batch_id,
                               col(ProvisioningRecord.cloud_api_id) == api_id)
                        .order_by(Device.device_id)).all()
    return [(int(r[0] or 0), DeviceKey(r[1], r[2], r[4]), str(r[3])) for r in rows]


def check_target(*, settings: Settings, account: str, batch: Batch, api: CloudApi) -> tuple[Drift, dict[str, Any]]:
    assert batch.id is not None and api.id is not None
    with Session(get_engine(settings)) as session:
        devices = _devices(session, batch.id, api.id)
        connector = connector_for(session=session, settings=settings, api=api)
        session.commit()
    recorded = [cert.device_id for _, cert, status in devices if status == records.PROVISIONED]
    try:
        held = connector.inventory([cert for _, cert, _status in devices])
    finally:
        connector.close()
    if held is None:
        return Drift(account, batch.bid, api.name, api.kind, False, len(recorded), len(recorded)), {}
    drift = Drift(account, batch.bid, api.name, api.kind, True, len(recorded), len(held))
    for _pk, cert, status in devices:
        holding = held.get(cert.device_id)
        if status == records.PROVISIONED and holding is None:
            drift.missing.append(cert.device_id)
        if holding is not None and status != records.PROVISIONED:
            drift.unrecorded.append(cert.device_id)
        if holding is not None and not holding.enabled:
            drift.disabled.append(cert.device_id)
        if holding is not None and holding.fingerprint_sha256 and holding.fingerprint_sha256 != cert.fingerprint_sha256:
            drift.mismatched.append(cert.device_id)
    return drift, {k: v for k, v in held.items()}


def offered_note(batch: Batch) -> str:
    """Why a batch on offer is not repaired, in no surface's words (the CLI, the console's reconciliation
    page and GET /api/reconcile/latest all show it)."""
    return f"batch {batch.bid} is on offer to another account: nothing is changed on it until the offer ends"


def repair(*, settings: Settings, batch: Batch, api: CloudApi, drift: Drift, held: dict[str, Any],
           origin: runs.Origin = runs.CLI) -> None:
    """Record what the target holds, then provision what it lacks (the usual run, lease and all). A batch on
    offer is left as the receiver will get it, and a run refused (another run holds the batch, or it went on
    offer since) leaves the rest unrecorded: either is said in ``drift.not_repaired``, and the other targets
    go on."""
    assert batch.id is not None and api.id is not None
    with session_scope(settings) as session:
        # the batch held as the target's account's until its records are written: an offer made at this
        # moment waits, then sees them (and refuses while the batch is provisioned)
        owned = batch_held_by(session=session, batch_id=batch.id, account_id=api.account_id, lock=True)
        if owned is None or on_offer(session=session, batch=owned):
            drift.not_repaired = (offered_note(batch) if owned is not None
                                  else f"batch {batch.bid} is no longer bound to the account of {api.name}")
            return
        pks = {cert.device_id: pk for pk, cert, _ in _devices(session, batch.id, api.id)}
        now = datetime.now(UTC)
        good = [d for d in drift.unrecorded if d not in drift.mismatched]
        for device_id in good:
            session.execute(update(ProvisioningRecord).where(
                col(ProvisioningRecord.cloud_api_id) == api.id, col(ProvisioningRecord.device_id) == pks[device_id])
                .values(status=records.PROVISIONED, external_ref=held[device_id].external_ref, provisioned_at=now,
                        last_error=None, error_class=None))
        session.execute(update(ProvisioningRecord).where(
            col(ProvisioningRecord.cloud_api_id) == api.id,
            col(ProvisioningRecord.device_id).in_([pks[d] for d in drift.missing]))
            .values(status=records.PENDING, provisioned_at=None, external_ref=None))
        audit.record(session=session, actor=audit.operator_name(), action="reconcile.repair", subject=batch.bid,
                     account_id=api.account_id, cloud_api=api.name, recorded=len(good),
                     reprovision=len(drift.missing))
    drift.repaired = {"recorded": len(good)}
    if drift.missing:
        from bindery.provisioning.service import execute

        try:
            plan = start_run(settings=settings, batch_id=batch.id, bid=batch.bid, api=api, actor="reconcile",
                             origin=runs.Origin("reconcile", origin.flow_run_id, origin.flow_run_url))
        except BinderyError as exc:  # said in the run history's words: its page and its API read them too
            with session_scope(settings) as session:
                offered = on_offer(session=session, batch=batch)
            drift.not_repaired = offered_note(batch) if offered else str(exc)
            return
        still_missing = {device_id for device_id, _error in execute(settings=settings, plan=plan).failures}
        drift.repaired["reprovisioned"] = sum(d not in still_missing for d in drift.missing)


def load_target(*, settings: Settings, bid: str, cloud_api_name: str, account: str) -> tuple[Batch, CloudApi]:
    with session_scope(settings) as session:
        row = session.exec(select(Batch, CloudApi).join(Binding, col(Binding.batch_id) == col(Batch.id))
                           .join(Account, col(Account.id) == col(Binding.account_id))
                           .join(CloudApi, col(CloudApi.account_id) == col(Account.id))
                           .where(Batch.bid == bid, CloudApi.name == cloud_api_name, Account.name == account)).first()
        if row is None:
            raise NotFound(f"unknown BID {bid} or Product Cloud API {cloud_api_name} in account {account}")
        return row


def reconcile_target(*, settings: Settings, account: str, batch: Batch, api: CloudApi, fix: bool,
                     started_by: str, origin: runs.Origin) -> Drift:
    """One target's check (and repair), kept in the run history with its findings: the drift report."""
    assert batch.id is not None and api.id is not None
    with session_scope(settings) as session:
        run_id = runs.begin(session=session, kind=runs.RECONCILE, batch_id=batch.id, bid=batch.bid, api_id=api.id,
                            api_name=api.name, started_by=started_by, origin=origin)
    try:
        drift, held = check_target(settings=settings, account=account, batch=batch, api=api)
        if fix and drift.has_drift:
            repair(settings=settings, batch=batch, api=api, drift=drift, held=held, origin=origin)
    except Exception as exc:
        with session_scope(settings) as session:
            runs.finish(session=session, run_id=run_id, ok=False, counts={}, message=f"check failed: {exc}")
        raise
    with session_scope(settings) as session:
        runs.finish(session=session, run_id=run_id, ok=True,
                    counts=drift.counts(), message=drift.summary(), findings=drift.findings())
    if drift.has_drift:
        alerts.emit(alerts.DRIFT_FOUND, bid=batch.bid, cloud_api=api.name, account=account, counts=drift.counts(),
                    message=drift.summary())
    return drift


def reconcile(*, settings: Settings, account: str | None = None, fix: bool = False,
              origin: runs.Origin = runs.CLI) -> list[Drift]:
    with session_scope(settings) as session:
        targets = bound_targets(session, account)
    return [reconcile_target(settings=settings, account=account_name, batch=batch, api=api, fix=fix,
                             started_by=audit.operator_name(), origin=origin) for account_name, batch, api in targets]
