"""Batches changing hands: offers between accounts and the custody chain of each batch."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

from bindery.models.types import UTCDateTime, utcnow

OFFERED, ACCEPTED, WITHDRAWN, EXPIRED = "offered", "accepted", "withdrawn", "expired"


class TransferBase(SQLModel):
    note: str | None = Field(default=None, max_length=500, description="the giver's note to the receiver")
    expires_at: datetime = Field(sa_type=UTCDateTime, description="the code is refused after this moment")


class Transfer(TransferBase, table=True):
    """An offer of one batch from its owner to another account. ``state`` moves from offered exactly once,
    by a conditional UPDATE; the partial unique index keeps one open offer per batch."""

    __tablename__ = "batch_transfer"
    __table_args__ = (Index("uq_transfer_open_offer", "batch_id", unique=True,
                            sqlite_where=text("state = 'offered'"), postgresql_where=text("state = 'offered'")),)

    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="batch.id", index=True)
    from_account_id: int = Field(foreign_key="account.id", index=True)
    to_account_id: int = Field(foreign_key="account.id", index=True)
    state: str = Field(default=OFFERED, max_length=16, description="offered, accepted, withdrawn or expired")
    code_sha256: str = Field(max_length=64, unique=True, index=True,
                             description="SHA-256 of the one-time code (never the code)")
    devices: int = Field(description="the batch's device count when offered (it cannot change while on offer)")
    offered_by: str = Field(max_length=320)
    offered_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    closed_by: str | None = Field(default=None, max_length=320, description="who accepted or withdrew it")
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class TransferPublic(SQLModel):
    """An offer as either side sees it (GET /api/transfers)."""

    model_config = {"extra": "forbid"}

    bid: str = Field(description="Product Batch ID")
    direction: str = Field(description="made (your account offers) or received (your account is offered)")
    from_account: str
    to_account: str
    state: str = Field(description="offered, accepted, withdrawn or expired")
    devices: int
    vendor: str
    model: str | None
    note: str | None
    offered_by: str
    offered_at: datetime
    expires_at: datetime
    closed_by: str | None = Field(description="who accepted or withdrew it")
    closed_at: datetime | None


class TransferOfferPublic(SQLModel):
    """A new offer: the code is shown here once and stored only as a hash."""

    model_config = {"extra": "forbid"}

    bid: str
    to_account: str
    code: str = Field(description="the one-time code to hand to the receiving account's admin")
    expires_at: datetime


class Custody(SQLModel, table=True):
    """One account's holding of a batch: from a bind, an accepted transfer or a split, until it ended.
    A split batch starts with copies of its parent's entries (``held_as`` names the parent)."""

    __tablename__ = "custody"

    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="batch.id", index=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    held_as: str = Field(max_length=64, description="the BID the batch had while held")
    via: str = Field(max_length=16, description="bind, transfer or split")
    since: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    offered_by: str | None = Field(default=None, max_length=320)
    accepted_by: str = Field(max_length=320, description="who bound, accepted or split")


class CustodyPublic(SQLModel):
    """One owner in a batch's chain of custody."""

    model_config = {"extra": "forbid", "populate_by_name": True, "serialize_by_alias": True}

    account: str
    bid: str = Field(description="the BID the batch had while this account held it")
    via: str = Field(description="bind, transfer or split")
    from_: datetime = Field(alias="from", description="when this account got the batch")
    to: datetime | None = Field(description="when it passed on (none: the current owner)")
    offered_by: str | None
    accepted_by: str = Field(description="who bound, accepted or split")
