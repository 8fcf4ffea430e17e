"""The audit log: one row for every change, written in the same transaction as the change."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from bindery.models.types import UTCDateTime, utcnow


class AuditEventBase(SQLModel):
    actor: str = Field(max_length=320, description="acting user's email, or 'operator' for catalog work")
    action: str = Field(max_length=64, index=True)
    subject: str = Field(max_length=256, index=True, description="what was acted on, e.g. a BID")
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False, server_default="{}"))


class AuditEvent(AuditEventBase, table=True):
    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int | None = Field(default=None, foreign_key="account.id", index=True,
                                   description="the account acted in; none for the operator's catalog work")
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class AuditEventPublic(AuditEventBase):
    id: int
    at: datetime
