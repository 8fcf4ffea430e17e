"""Cutting a bound batch in two (cut tape): the first N devices in device-id order, or named ones, move
to a new batch of the same vendor and model, owned by the same account. A device stays in exactly one
batch: it moves by an UPDATE of its batch id, with its provisioning records."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import distinct, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bindery import audit, custody
from bindery.access import Action, Actor, owned_batch, refuse_while_on_offer, refuse_while_running
from bindery.errors import BinderyError, FieldError
from bindery.models.accounts import Binding
from bindery.models.catalog import Batch, Device
from bindery.models.clouds import CloudApi
from bindery.models.provisioning import ProvisioningRecord
from bindery.provisioning.status import PROVISIONED
from bindery.reels.base import check_bid, device_id_problem

STEP = 1000


@dataclass(frozen=True)
class SplitOutcome:
    bid: str
    new_bid: str
    moved: int
    left: int


def check_new_bid(bid: str, new_bid: str) -> None:
    """A part's BID lives in its parent's namespace (``R-7781-A`` from ``R-7781``): an owner cannot take a
    BID another account's reel will carry, nor learn by a refusal whether some other batch exists."""
    try:
        check_bid(new_bid)
    except BinderyError:
        shown = new_bid if len(new_bid or "") <= 80 else new_bid[:77] + "..."
        raise FieldError("new_bid", f"{shown!r} is not a BID: use 1 to 64 letters, digits, '-' or '_'") from None
    if not (new_bid.startswith((f"{bid}-", f"{bid}_")) and len(new_bid) > len(bid) + 1):
        raise FieldError("new_bid", f"{new_bid!r} must begin with {bid}- (or {bid}_) and name the part, "
                         f"such as {bid}-2")


def _chosen(session: Session, batch: Batch, count: int | None, device_ids: list[str] | None) -> list[int]:
    """The Device.id of the devices to move, after every check on the choice."""
    if count is None and device_ids is None:
        raise FieldError("count", "give the number of devices to move or their device ids", named=False,
                         cli_fix="use --count N or --devices FILE (one device id a line)",
                         api_fix="send count or devices (a list of device ids)")
    if count is not None and device_ids is not None:
        raise FieldError("count", "give {count} or {devices}, not both", named=False, mentions=("count", "devices"))
    if count is not None:
        if not 1 <= count < batch.device_count:
            raise FieldError("count", f"{count} is not from 1 to {batch.device_count - 1} (batch {batch.bid} holds "
                             f"{batch.device_count} devices; a split leaves at least one)")
        return list(session.exec(select(Device.id).where(Device.batch_id == batch.id)
                                 .order_by(col(Device.device_id)).limit(count)).all())  # type: ignore[arg-type]
    assert device_ids is not None
    wanted = [d.strip() for d in device_ids if d.strip()]
    if not wanted:
        raise FieldError("devices", "names no device")
    seen: set[str] = set()
    for device_id in wanted:
        problem = device_id_problem(device_id)
        if problem is not None:
            raise FieldError("devices", f"line {len(seen) + 1}: {problem}")
        if device_id in seen:
            raise FieldError("devices", f"device {device_id[:128]!r} is named twice")
        seen.add(device_id)
    found: dict[str, int] = {}
    for start in range(0, len(wanted), STEP):
        part = wanted[start:start + STEP]
        found.update({str(d): int(i or 0) for i, d in session.exec(select(Device.id, Device.device_id).where(
            Device.batch_id == batch.id, col(Device.device_id).in_(part))).all()})
    missing = next((d for d in wanted if d not in found), None)
    if missing is not None:
        raise FieldError("devices", f"device {missing[:128]!r} is not in batch {batch.bid}")
    if len(found) >= batch.device_count:
        raise FieldError("devices", f"names all {batch.device_count} devices of batch {batch.bid}: a split leaves "
                         "at least one")
    return [found[d] for d in wanted]


def _provisioned_among(session: Session, pks: list[int]) -> tuple[int, list[str]]:
    """How many of these devices are provisioned somewhere (a device in two APIs is one device), and the
    APIs holding them."""
    held, apis = 0, set[str]()
    for start in range(0, len(pks), STEP):
        provisioned = (col(ProvisioningRecord.device_id).in_(pks[start:start + STEP]),
                       col(ProvisioningRecord.status) == PROVISIONED)
        held += session.exec(select(func.count(distinct(col(ProvisioningRecord.device_id)))).where(*provisioned)).one()
        apis.update(session.exec(select(CloudApi.name).distinct().join(
            ProvisioningRecord, col(ProvisioningRecord.cloud_api_id) == col(CloudApi.id)).where(*provisioned)).all())
    return held, sorted(apis)


def provisioned_devices(*, session: Session, batch_id: int) -> int:
    """How many devices of the batch are provisioned somewhere (the split page's "none can move")."""
    return session.exec(select(func.count(distinct(col(ProvisioningRecord.device_id)))).where(
        col(ProvisioningRecord.batch_id) == batch_id, col(ProvisioningRecord.status) == PROVISIONED)).one()


def split(*, session: Session, actor: Actor, bid: str, new_bid: str, count: int | None = None,
          device_ids: list[str] | None = None) -> SplitOutcome:
    batch, binding = owned_batch(session=session, actor=actor, bid=bid, action=Action.SPLIT, lock=True)
    assert batch.id is not None
    check_new_bid(bid, new_bid)
    if session.exec(select(Batch.id).where(Batch.bid == new_bid)).first() is not None:
        raise FieldError("new_bid", f"BID {new_bid} is taken: choose another")
    refuse_while_on_offer(session=session, batch=batch, doing="split it")
    pks = _chosen(session, batch, count, device_ids)
    held, apis = _provisioned_among(session, pks)
    if held:
        names = ", ".join(apis)
        one_of = apis[0] if len(apis) == 1 else "NAME"
        raise BinderyError.with_fix(
            lambda fix: f"{held} of the {len(pks)} devices to move from batch {bid} are provisioned (in "
                        f"{names}): deprovision them {fix}",
            cli=f"first (bindery deprovision {bid} --cloud-api {one_of}, or --forget)"
                + (f", for each of {names}" if len(apis) > 1 else ""),
            page="on the batch page first",
            api=f"first (POST /api/batches/{bid}/deprovision with cloud_api, or forget)")
    refuse_while_running(session=session, batch=batch, doing="split it")
    child = Batch(bid=new_bid, vendor=batch.vendor, model=batch.model, slot=batch.slot, device_count=len(pks),
                  source_format=batch.source_format, source_name=batch.source_name,
                  source_sha256=batch.source_sha256, split_from_id=batch.id)
    try:
        with session.begin_nested():  # another part may take the same BID at this moment (D001-X-2 from D001-X)
            session.add(child)
    except IntegrityError:
        raise FieldError("new_bid", f"BID {new_bid} is taken: choose another") from None
    assert child.id is not None
    for start in range(0, len(pks), STEP):
        part = pks[start:start + STEP]
        session.execute(update(Device).where(col(Device.id).in_(part)).values(batch_id=child.id))
        session.execute(update(ProvisioningRecord).where(col(ProvisioningRecord.device_id).in_(part))
                        .values(batch_id=child.id))
    batch.device_count -= len(pks)
    binding.bound_count = max(0, binding.bound_count - len(pks))
    session.add(batch)
    session.add(binding)
    session.add(Binding(batch_id=child.id, account_id=actor.account_id, bound_by_user_id=actor.user_id,
                        bound_count=len(pks), target_cloud_api_id=binding.target_cloud_api_id))
    custody.inherit(session=session, parent=batch, child=child, account_id=actor.account_id, by=actor.email)
    for subject in (bid, new_bid):
        audit.record(session=session, actor=actor.email, action="batch.split", subject=subject,
                     account_id=actor.account_id, parent=bid, new_bid=new_bid, moved=len(pks), left=batch.device_count)
    return SplitOutcome(bid, new_bid, len(pks), batch.device_count)

