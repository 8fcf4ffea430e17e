"""A batch's chain of custody: one entry per account that held it, from its bind, an accepted transfer or
a split, until it passed on. Written in the caller's session, with the change it records."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from bindery.models.accounts import Account
from bindery.models.catalog import Batch
from bindery.models.transfers import Custody, CustodyPublic
from bindery.models.types import utcnow

BIND, TRANSFER, SPLIT = "bind", "transfer", "split"


def start(*, session: Session, batch: Batch, account_id: int, by: str) -> None:
    """The first entry, on a bind."""
    assert batch.id is not None
    session.add(Custody(batch_id=batch.id, account_id=account_id, held_as=batch.bid, via=BIND, accepted_by=by))


def hand_over(*, session: Session, batch: Batch, to_account_id: int, offered_by: str, accepted_by: str) -> None:
    """Close the giver's entry and open the receiver's, at one moment."""
    assert batch.id is not None
    now = utcnow()
    session.execute(update(Custody).where(col(Custody.batch_id) == batch.id, col(Custody.until).is_(None))
                    .values(until=now))
    session.add(Custody(batch_id=batch.id, account_id=to_account_id, held_as=batch.bid, via=TRANSFER, since=now,
                        offered_by=offered_by, accepted_by=accepted_by))


def inherit(*, session: Session, parent: Batch, child: Batch, account_id: int, by: str) -> None:
    """A split batch's chain: its parent's entries up to the cut (held as the parent), then its own."""
    assert parent.id is not None and child.id is not None
    now = utcnow()
    for entry in session.exec(select(Custody).where(Custody.batch_id == parent.id).order_by(col(Custody.id))).all():
        session.add(Custody(batch_id=child.id, account_id=entry.account_id, held_as=entry.held_as, via=entry.via,
                            since=entry.since, until=entry.until or now, offered_by=entry.offered_by,
                            accepted_by=entry.accepted_by))
    session.add(Custody(batch_id=child.id, account_id=account_id, held_as=child.bid, via=SPLIT, since=now,
                        accepted_by=by))


def forget(*, session: Session, batch_id: int) -> None:
    """An unbound batch's chain ends with it (the audit log keeps its history)."""
    session.execute(delete(Custody).where(col(Custody.batch_id) == batch_id))


def chain(*, session: Session, batch_id: int) -> list[dict[str, Any]]:
    rows = session.exec(select(Custody, Account.name).join(Account, col(Account.id) == col(Custody.account_id))
                        .where(Custody.batch_id == batch_id).order_by(col(Custody.id))).all()
    return [CustodyPublic.model_validate({
        "account": name, "bid": entry.held_as, "via": entry.via, "from": entry.since, "to": entry.until,
        "offered_by": entry.offered_by, "accepted_by": entry.accepted_by}).model_dump(mode="json")
        for entry, name in rows]


def parts(*, session: Session, batch_id: int, account_id: int) -> list[str]:
    """The BIDs this account split off the batch (wherever they went since): its own doing, never another
    holder's later cuts."""
    rows = session.exec(select(Batch.bid).join(Custody, col(Custody.batch_id) == col(Batch.id)).where(
        Batch.split_from_id == batch_id, Custody.via == SPLIT, Custody.account_id == account_id,
        col(Custody.held_as) == col(Batch.bid)).order_by(col(Batch.bid))).all()
    return [str(bid) for bid in rows]
