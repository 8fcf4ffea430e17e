"""Binding reels to accounts by BID (typed, pasted or scanned from the reel's QR code)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bindery import audit, custody
from bindery.access import (
    Action,
    Actor,
    owned_batch,
    refuse_while_on_offer,
    refuse_while_running,
    require,
    unknown_bid,
)
from bindery.errors import BadInput, BinderyError
from bindery.models.accounts import Account, Binding, User
from bindery.models.catalog import Batch
from bindery.models.clouds import CloudApi
from bindery.models.provisioning import ProvisioningRecord
from bindery.provisioning.records import FAILED, by_target, provisioned_by_target, warnings_by_target
from bindery.reels.base import check_bid

QR_KEYS = ("bid", "groupId")


def bid_from_qr(text: str) -> str:
    """The BID in a reel's QR text: ``.../bind?bid=D001`` (Bindery) or ``.../cloud-id?groupId=D001`` (vendor)."""
    shown = (text or "").strip()
    parts = urlsplit(shown)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadInput(f"QR text {shown[:80]!r} is not a URL (expected .../bind?bid=BID or .../cloud-id?groupId=BID)")
    query = parse_qs(parts.query)
    for key in QR_KEYS:
        values = query.get(key)
        if values:
            if len(set(values)) > 1:
                raise BadInput(f"QR URL names several BIDs: {', '.join(values)}")
            return check_bid(values[0])
    raise BadInput(f"QR URL {shown[:80]!r} carries no BID (no 'bid' or 'groupId' in its query)")


@dataclass(frozen=True)
class BindOutcome:
    bid: str
    devices: int
    already: bool


def bind(*, session: Session, actor: Actor, bid: str) -> BindOutcome:
    """Claim an unbound catalog batch for the actor's account; the database decides a race."""
    require(actor, Action.BIND)
    check_bid(bid)
    batch = session.exec(select(Batch).where(Batch.bid == bid)).first()
    if batch is None:
        raise unknown_bid(bid)
    assert batch.id is not None
    existing = session.exec(select(Binding).where(Binding.batch_id == batch.id)).first()
    if existing is None:
        try:
            with session.begin_nested():
                session.add(Binding(batch_id=batch.id, account_id=actor.account_id, bound_by_user_id=actor.user_id,
                                    bound_count=batch.device_count))
        except IntegrityError:
            existing = session.exec(select(Binding).where(Binding.batch_id == batch.id)).one()
        else:
            custody.start(session=session, batch=batch, account_id=actor.account_id, by=actor.email)
            audit.record(session=session, actor=actor.email, action="batch.bind", subject=bid,
                         account=actor.account_name, devices=batch.device_count)
            return BindOutcome(bid, batch.device_count, already=False)
    if existing.account_id != actor.account_id:
        raise unknown_bid(bid)
    return BindOutcome(bid, batch.device_count, already=True)


def unbind(*, session: Session, actor: Actor, bid: str) -> None:
    """Release a batch with no provisioned devices (and forget its records in the account's own targets:
    an earlier owner's records of a transferred batch are that owner's history)."""
    batch, binding = owned_batch(session=session, actor=actor, bid=bid, action=Action.UNBIND)
    assert batch.id is not None
    refuse_while_on_offer(session=session, batch=batch, doing="unbind it")
    refuse_while_running(session=session, batch=batch, doing="unbind it")
    held = provisioned_by_target(session=session, batch_id=batch.id)
    if any(held.values()):
        where = ", ".join(f"{n} in {name}" for name, n in sorted(held.items()) if n)
        raise BinderyError(f"batch {bid} has provisioned devices ({where}): deprovision them first")
    own = select(CloudApi.id).where(CloudApi.account_id == actor.account_id)
    session.execute(delete(ProvisioningRecord).where(col(ProvisioningRecord.batch_id) == batch.id,
                                                     col(ProvisioningRecord.cloud_api_id).in_(own)))
    session.delete(binding)
    custody.forget(session=session, batch_id=batch.id)
    audit.record(session=session, actor=actor.email, action="batch.unbind", subject=batch.bid,
                 account=actor.account_name)


def _view(session: Session, batch: Batch, binding: Binding, bound_by: str, account: str) -> dict[str, Any]:
    assert batch.id is not None
    target = session.get(CloudApi, binding.target_cloud_api_id) if binding.target_cloud_api_id else None
    parent = session.get(Batch, batch.split_from_id) if batch.split_from_id else None
    owner = binding.account_id  # the counters of the owner's APIs; earlier owners' records are their history
    return {
        "bid": batch.bid, "vendor": batch.vendor, "model": batch.model, "slot": batch.slot,
        "devices": batch.device_count, "bound": binding.bound_count,
        "provisioned": provisioned_by_target(session=session, batch_id=batch.id, account_id=owner),
        "failed": by_target(session=session, batch_id=batch.id, status=FAILED, account_id=owner),
        "warnings": warnings_by_target(session=session, batch_id=batch.id, account_id=owner),
        "bound_at": binding.bound_at.isoformat(), "bound_by": bound_by, "target": target.name if target else None,
        "account": account, "split_from": parent.bid if parent else None,
        "custody": custody.chain(session=session, batch_id=batch.id),
        "parts": custody.parts(session=session, batch_id=batch.id, account_id=owner),
    }


def account_batches(*, session: Session, actor: Actor) -> list[dict[str, Any]]:
    require(actor, Action.VIEW)
    rows = session.exec(
        select(Batch, Binding, User.email, Account.name)
        .join(Binding, col(Binding.batch_id) == col(Batch.id))
        .join(User, col(User.id) == col(Binding.bound_by_user_id))
        .join(Account, col(Account.id) == col(Binding.account_id))
        .where(Binding.account_id == actor.account_id).order_by(Batch.bid)
    ).all()
    return [_view(session, batch, binding, email, account) for batch, binding, email, account in rows]


def batch_view(*, session: Session, actor: Actor, bid: str) -> dict[str, Any]:
    batch, binding = owned_batch(session=session, actor=actor, bid=bid)
    user = session.get(User, binding.bound_by_user_id)
    return _view(session, batch, binding, user.email if user else "", actor.account_name)
