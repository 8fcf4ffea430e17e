"""Accounts (tenants), their users, and which account a batch is bound to."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from bindery.models.transfers import CustodyPublic
from bindery.models.types import UTCDateTime, utcnow


class AccountBase(SQLModel):
    name: str = Field(max_length=64, unique=True, index=True)


class Account(AccountBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class UserBase(SQLModel):
    email: str = Field(max_length=320, unique=True, index=True)
    role: str = Field(max_length=16, description="admin or member")


class User(UserBase, table=True):
    __tablename__ = "app_user"  # "user" is reserved in PostgreSQL

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    password_hash: str | None = Field(default=None, max_length=255, description="argon2id; none: no console login")


class UserPublic(UserBase):
    """The acting user (GET /api/me)."""

    model_config = {"extra": "forbid"}

    account: str = Field(description="the user's account (tenant)")


class BindingBase(SQLModel):
    bound_count: int = Field(description="devices bound with the batch")


class Binding(BindingBase, table=True):
    """A batch claimed by an account. The unique batch_id is what makes one of two racing binds lose."""

    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="batch.id", unique=True, index=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    bound_by_user_id: int = Field(foreign_key="app_user.id")
    bound_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    target_cloud_api_id: int | None = Field(default=None, foreign_key="cloud_api.id",
                                            description="the batch's Product Cloud API")


class BindingPublic(SQLModel):
    """A bound batch as its account sees it, with its counters per Product Cloud API."""

    model_config = {"extra": "forbid"}

    bid: str = Field(description="Product Batch ID")
    vendor: str
    model: str | None
    slot: str | None
    devices: int = Field(description="devices in the reel")
    bound: int = Field(description="devices bound with the batch")
    provisioned: dict[str, int] = Field(description="provisioned devices per Product Cloud API name")
    failed: dict[str, int] = Field(description="devices a run gave up on (a permanent error, or retries used up), "
                                               "per Product Cloud API name")
    warnings: dict[str, int] = Field(description="provisioned devices whose receiver did not apply its IoT policy, "
                                                 "per Product Cloud API name")
    bound_at: datetime
    bound_by: str = Field(description="email of the user who bound it")
    target: str | None = Field(description="the batch's Product Cloud API, if it has one")
    account: str
    split_from: str | None = Field(default=None, description="the BID this batch was split from")
    custody: list[CustodyPublic] = Field(default_factory=list, description="each account that held the batch, "
                                         "oldest first (the last: the current owner)")
    parts: list[str] = Field(default_factory=list, description="the BIDs your account split off this batch")
