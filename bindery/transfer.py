"""Offering a bound batch to another account, and that account accepting it with a one-time code.

The code is random (160 bits), shown once, stored only as its SHA-256, good for one accept until it
expires. Who wins two accepts at once is decided by one conditional UPDATE (``WHERE state='offered'``)
and its row count, never by a read before the write."""

from __future__ import annotations

import base64
import hashlib
import math
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, or_, select

from bindery import audit, custody
from bindery.access import Action, Actor, owned_batch, refuse_while_on_offer, refuse_while_running, require
from bindery.accounts import find_account
from bindery.errors import BadInput, BinderyError, FieldError, NotFound, TooManyAttempts
from bindery.models.accounts import Account, Binding, User
from bindery.models.audit import AuditEvent
from bindery.models.catalog import Batch
from bindery.models.clouds import CloudApi
from bindery.models.provisioning import ProvisioningRecord
from bindery.models.transfers import (
    ACCEPTED,
    EXPIRED,
    OFFERED,
    WITHDRAWN,
    Transfer,
    TransferOfferPublic,
    TransferPublic,
)
from bindery.models.types import utcnow
from bindery.provisioning.status import PROVISIONED
from bindery.settings import get_settings

DEFAULT_EXPIRY = "7d"
EXPIRES = re.compile(r"^(\d{1,4})([mhd])$")
LONGEST = timedelta(days=90)
CODE_BYTES = 20  # 160 bits


def parse_expires(text: str | None) -> timedelta:
    """``30m``, ``12h``, ``7d``: from one minute to 90 days."""
    shown = (text or DEFAULT_EXPIRY).strip()
    found = EXPIRES.fullmatch(shown)
    if not found:
        raise FieldError("expires", f"{shown[:40]!r} is not a duration like 30m, 12h or 7d")
    amount = timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[found[2]]: int(found[1])})
    if not timedelta(minutes=1) <= amount <= LONGEST:
        raise FieldError("expires", f"{shown!r} is not from 1m to 90d")
    return amount


def new_code() -> str:
    """Groups of four base32 letters and digits: typed from a phone, pasted from a mail, case-insensitive."""
    text = base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode().rstrip("=")
    return "-".join(text[i:i + 4] for i in range(0, len(text), 4))


def code_digest(code: str) -> str:
    """The stored form. A plain hash is enough: 160 random bits cannot be guessed offline."""
    normalised = re.sub(r"[\s-]", "", code or "").upper()
    return hashlib.sha256(normalised.encode()).hexdigest()


def held_in_own_apis(*, session: Session, batch_id: int, account_id: int) -> dict[str, int]:
    """Devices of the batch provisioned in this account's Product Cloud APIs, per API."""
    rows = session.exec(select(CloudApi.name, func.count()).join(
        ProvisioningRecord, col(ProvisioningRecord.cloud_api_id) == col(CloudApi.id)).where(
        col(ProvisioningRecord.batch_id) == batch_id, col(ProvisioningRecord.status) == PROVISIONED,
        col(CloudApi.account_id) == account_id).group_by(CloudApi.name).order_by(CloudApi.name)).all()
    return {str(name): int(count) for name, count in rows}


def refuse_while_provisioned(*, session: Session, batch: Batch, account_id: int, doing: str) -> None:
    assert batch.id is not None
    held = held_in_own_apis(session=session, batch_id=batch.id, account_id=account_id)
    if held:
        where = ", ".join(f"{name} holds {count} {'device' if count == 1 else 'devices'}"
                          for name, count in held.items())
        raise BinderyError.with_fix(
            lambda fix: f"batch {batch.bid} is provisioned ({where}): deprovision it {fix} before you {doing}",
            cli=f"first (bindery deprovision {batch.bid} --cloud-api NAME, or --forget)", page="on its page",
            api=f"first (POST /api/batches/{batch.bid}/deprovision with cloud_api, or forget)")
    refuse_while_running(session=session, batch=batch, doing=doing)


def _receiver(session: Session, actor: Actor, bid: str, name: str) -> Account:
    """The receiving account by its name. A typo must be said plainly, so an unknown name is; since that
    line also tells an admin which names exist, each refused name is an audit event of the asking
    account, committed before the refusal (its admins and the operator see who tried which names)."""
    wanted = (name or "").strip()
    found = None if has_control(wanted) or not wanted else find_account(session, wanted)
    if found is None:
        audit.record(session=session, actor=actor.email, action="transfer.refused", subject=bid,
                     account_id=actor.account_id, to_account=wanted[:64], reason="unknown account")
        session.commit()
        raise FieldError("to", f"unknown account {wanted[:64]!r}")
    return found


def has_control(text: str) -> bool:
    """NUL and other control characters (a newline or tab aside): PostgreSQL's text refuses NUL."""
    return any((ord(c) < 0x20 and c not in "\n\t\r") or ord(c) == 0x7f for c in text)


def _expire_stale(session: Session, batch_id: int) -> None:
    session.execute(update(Transfer).where(col(Transfer.batch_id) == batch_id, col(Transfer.state) == OFFERED,
                                           col(Transfer.expires_at) <= utcnow()).values(state=EXPIRED))


def offer(*, session: Session, actor: Actor, bid: str, to_account: str, expires: timedelta,
          note: str | None = None) -> TransferOfferPublic:
    """Offer the actor's batch to another account; returns the code, which is stored only as a hash. The
    batch is locked first, so a run starting at once either sees the offer or is seen by it."""
    batch, _binding = owned_batch(session=session, actor=actor, bid=bid, action=Action.TRANSFER, lock=True)
    assert batch.id is not None
    receiver = _receiver(session, actor, bid, to_account)
    assert receiver.id is not None
    if receiver.id == actor.account_id:
        raise FieldError("to", f"batch {bid} already belongs to account {receiver.name}")
    if note is not None and len(note) > 500:
        raise FieldError("note", f"has {len(note):,} characters: at most 500")
    if note is not None and has_control(note):
        raise FieldError("note", "holds control characters: use letters, digits, punctuation and line breaks")
    _expire_stale(session, batch.id)
    refuse_while_on_offer(session=session, batch=batch, doing="offer it again")
    refuse_while_provisioned(session=session, batch=batch, account_id=actor.account_id, doing="offer it")
    code = new_code()
    row = Transfer(batch_id=batch.id, from_account_id=actor.account_id, to_account_id=receiver.id,
                   code_sha256=code_digest(code), devices=batch.device_count, offered_by=actor.email,
                   expires_at=utcnow() + expires, note=(note or "").strip() or None)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise BinderyError(f"batch {bid} is already on offer: withdraw that offer first") from None
    for account_id in (actor.account_id, receiver.id):
        audit.record(session=session, actor=actor.email, action="transfer.offer", subject=bid, account_id=account_id,
                     from_account=actor.account_name, to_account=receiver.name, devices=batch.device_count,
                     expires_at=row.expires_at)
    return TransferOfferPublic(bid=bid, to_account=receiver.name, code=code, expires_at=row.expires_at)


def withdraw(*, session: Session, actor: Actor, bid: str) -> None:
    batch, _binding = owned_batch(session=session, actor=actor, bid=bid, action=Action.TRANSFER)
    assert batch.id is not None
    _expire_stale(session, batch.id)
    open_offer = session.exec(select(Transfer).where(Transfer.batch_id == batch.id, Transfer.state == OFFERED)).first()
    if open_offer is None:
        raise BinderyError(f"batch {bid} is not on offer: nothing to withdraw")
    done = session.execute(update(Transfer).where(col(Transfer.id) == open_offer.id, col(Transfer.state) == OFFERED)
                           .values(state=WITHDRAWN, closed_by=actor.email, closed_at=utcnow()))
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise BinderyError(f"batch {bid} was accepted or withdrawn meanwhile: nothing to withdraw")
    receiver = session.get(Account, open_offer.to_account_id)
    for account_id in (actor.account_id, open_offer.to_account_id):
        audit.record(session=session, actor=actor.email, action="transfer.withdraw", subject=bid,
                     account_id=account_id, from_account=actor.account_name,
                     to_account=receiver.name if receiver else None)


@dataclass(frozen=True)
class Accepted:
    bid: str
    devices: int
    from_account: str


UNKNOWN_CODE = "unknown transfer code: check it with the account that offered the batch"


def accept(*, session: Session, actor: Actor, code: str) -> Accepted:
    """The receiver's admin takes the batch with the code. An expired code's attempt is audited on both
    sides and committed before the refusal (the caller's rollback then undoes nothing)."""
    require(actor, Action.TRANSFER)
    digest = code_digest(reject_blank(code))
    refuse_after_wrong_codes(session, actor)
    found = session.exec(select(Transfer).where(Transfer.code_sha256 == digest)).first()
    if found is None or found.to_account_id != actor.account_id:
        # a leaked code is useless to a third account, and says nothing to it; each try is counted (the
        # code itself is never kept, not even in the audit)
        audit.record(session=session, actor=actor.email, action="transfer.wrong_code", subject="transfer code",
                     account_id=actor.account_id)
        session.commit()
        raise NotFound(UNKNOWN_CODE)
    batch = session.get(Batch, found.batch_id)
    giver = session.get(Account, found.from_account_id)
    assert batch is not None and batch.id is not None and giver is not None and found.id is not None
    if state_of(found) == EXPIRED:  # run out now, or closed as expired since (a new offer, an earlier try)
        _refuse_expired(session, actor, found, batch, giver)
    won = session.execute(update(Transfer).where(col(Transfer.id) == found.id, col(Transfer.state) == OFFERED,
                                                 col(Transfer.expires_at) > utcnow())
                          .values(state=ACCEPTED, closed_by=actor.email, closed_at=utcnow()))
    if won.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(found)
        raise BinderyError(_closed(found, batch.bid))
    refuse_while_provisioned(session=session, batch=batch, account_id=found.from_account_id, doing="accept it")
    moved = session.execute(update(Binding).where(col(Binding.batch_id) == batch.id,
                                                  col(Binding.account_id) == found.from_account_id)
                            .values(account_id=actor.account_id, bound_by_user_id=actor.user_id, bound_at=utcnow(),
                                    target_cloud_api_id=None))
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise BinderyError(f"batch {batch.bid} is no longer bound to account {giver.name}: the offer is void")
    custody.hand_over(session=session, batch=batch, to_account_id=actor.account_id, offered_by=found.offered_by,
                      accepted_by=actor.email)
    for account_id in (found.from_account_id, actor.account_id):
        audit.record(session=session, actor=actor.email, action="transfer.accept", subject=batch.bid,
                     account_id=account_id, from_account=giver.name, to_account=actor.account_name,
                     devices=batch.device_count, offered_by=found.offered_by)
    return Accepted(batch.bid, batch.device_count, giver.name)


def refuse_after_wrong_codes(session: Session, actor: Actor) -> None:
    """After the setting's number of wrong codes in its window, the account's accepts wait for the window's
    rest: a code of 160 bits cannot be guessed anyway, but a script trying should stop and be seen."""
    settings = get_settings()
    window = timedelta(seconds=settings.transfer_code_window_seconds)
    # tries at once count one after the other: the account's row is held until this try is counted or
    # accepted (PostgreSQL's FOR NO KEY UPDATE, which rows referring to the account, such as its audit
    # events, do not wait for; SQLite's BEGIN IMMEDIATE holds the file), as the login claims are
    session.exec(select(Account.id).where(Account.id == actor.account_id).with_for_update(key_share=True)).first()
    now = utcnow()
    own_users = select(User.email).where(User.account_id == actor.account_id)
    tried = session.exec(select(AuditEvent.at).where(  # expired codes count too: each is audited on both sides
        AuditEvent.account_id == actor.account_id, col(AuditEvent.actor).in_(own_users),
        col(AuditEvent.action).in_(("transfer.wrong_code", "transfer.expired")),
        col(AuditEvent.at) > now - window).order_by(col(AuditEvent.at).desc())
        .limit(settings.transfer_code_max_failures)).all()
    if len(tried) >= settings.transfer_code_max_failures:
        wait = max(1, math.ceil((tried[-1] + window - now).total_seconds()))
        raise TooManyAttempts(f"{len(tried)} wrong or expired transfer codes tried in account {actor.account_name} "
                              f"within {window.total_seconds() / 60:g} minutes: try again in {math.ceil(wait / 60)} "
                              f"{'minute' if wait <= 60 else 'minutes'}", retry_after_seconds=wait)


def _refuse_expired(session: Session, actor: Actor, found: Transfer, batch: Batch, giver: Account) -> None:
    session.execute(update(Transfer).where(col(Transfer.id) == found.id, col(Transfer.state) == OFFERED)
                    .values(state=EXPIRED))
    for account_id in (found.from_account_id, actor.account_id):
        audit.record(session=session, actor=actor.email, action="transfer.expired", subject=batch.bid,
                     account_id=account_id, from_account=giver.name, to_account=actor.account_name,
                     expired_at=found.expires_at)
    session.commit()
    raise BinderyError(f"the transfer code for batch {batch.bid} expired at {found.expires_at:%Y-%m-%d %H:%M} UTC: "
                       f"ask account {giver.name} for a new offer")


def _closed(found: Transfer, bid: str) -> str:
    if found.state == ACCEPTED:
        return f"the transfer code for batch {bid} was already used"
    if found.state == WITHDRAWN:
        return f"the offer of batch {bid} was withdrawn by {found.closed_by}: ask them for a new offer"
    return f"the transfer code for batch {bid} expired: ask for a new offer"


def state_of(row: Transfer) -> str:
    return EXPIRED if row.state == OFFERED and row.expires_at <= utcnow() else row.state


def list_transfers(*, session: Session, actor: Actor) -> list[dict[str, Any]]:
    """Offers made and received by the actor's account, newest first (no codes: they are not kept)."""
    require(actor, Action.VIEW)
    giver, receiver = Account.__table__.alias("giver"), Account.__table__.alias("receiver")  # type: ignore[attr-defined]
    rows = session.exec(
        select(Transfer, Batch, giver.c.name, receiver.c.name)
        .join(Batch, col(Batch.id) == col(Transfer.batch_id))
        .join(giver, giver.c.id == col(Transfer.from_account_id))
        .join(receiver, receiver.c.id == col(Transfer.to_account_id))
        .where(or_(col(Transfer.from_account_id) == actor.account_id, col(Transfer.to_account_id) == actor.account_id))
        .order_by(col(Transfer.id).desc())).all()
    return [TransferPublic(
        bid=batch.bid, direction="made" if row.from_account_id == actor.account_id else "received",
        from_account=from_name, to_account=to_name, state=state_of(row), devices=row.devices,
        vendor=batch.vendor, model=batch.model, note=row.note, offered_by=row.offered_by, offered_at=row.offered_at,
        expires_at=row.expires_at, closed_by=row.closed_by, closed_at=row.closed_at).model_dump(mode="json")
        for row, batch, from_name, to_name in rows]


def reject_blank(code: str) -> str:
    if not re.sub(r"[\s-]", "", code or ""):
        raise BadInput("give the transfer code you were sent", api_text="code: give the transfer code you were sent")
    return code


def open_offer_of(*, session: Session, actor: Actor, bid: str) -> dict[str, Any] | None:
    """The actor's account's open offer of this batch, if any (as ``list_transfers`` shows it)."""
    return next((t for t in list_transfers(session=session, actor=actor)
                 if t["bid"] == bid and t["direction"] == "made" and t["state"] == OFFERED), None)


def last_made(*, session: Session, actor: Actor, bid: str) -> dict[str, Any] | None:
    """The newest offer of this BID the actor's account made, whatever became of it: what tells a giver
    that its batch went to another account, or that its offer expired."""
    return next((t for t in list_transfers(session=session, actor=actor)
                 if t["bid"] == bid and t["direction"] == "made"), None)
