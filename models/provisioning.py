"""Provisioning records (one per device and Product Cloud API), run leases and account settings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bindery.models.types import UTCDateTime, utcnow


class ProvisioningRecordBase(SQLModel):
    status: str = Field(max_length=16, index=True, description="pending, provisioned, failed or removed")
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    error_class: str | None = Field(default=None, max_length=16, description="transient or permanent")
    external_ref: str | None = Field(default=None, max_length=512)
    endpoint: str | None = Field(default=None, max_length=512)
    topic: str | None = Field(default=None, max_length=512)
    policy_applied: bool | None = Field(default=None, description="the receiver's word: false = provisioned, "
                                        "but its IoT policy is missing (a warning)")
    first_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    provisioned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ProvisioningRecord(ProvisioningRecordBase, table=True):
    """Says provisioned only after the target confirmed."""

    __tablename__ = "provisioning_record"
    __table_args__ = (UniqueConstraint("device_id", "cloud_api_id", name="uq_record_device_target"),
                      Index("ix_record_batch_device_target", "batch_id", "device_id", "cloud_api_id"))

    id: int | None = Field(default=None, primary_key=True)
    device_id: int = Field(foreign_key="device.id", index=True)
    batch_id: int = Field(foreign_key="batch.id", index=True)
    cloud_api_id: int = Field(foreign_key="cloud_api.id", index=True)


class ProvisioningRecordPublic(SQLModel):
    """One device's record in one Product Cloud API (a row of GET /api/batches/{bid}/devices)."""

    model_config = {"extra": "forbid"}

    device_id: str
    cloud_api: str
    status: str = Field(description="pending, provisioned, failed or removed")
    attempts: int
    last_error: str | None
    error_class: str | None = Field(description="transient or permanent")
    external_ref: str | None
    endpoint: str | None
    topic: str | None
    policy_applied: bool | None = Field(description="the receiver's word: false = provisioned, but its IoT policy "
                                                    "is missing (a warning)")
    provisioned_at: datetime | None
    last_attempt_at: datetime | None


class RunLease(SQLModel, table=True):
    """At most one provisioning run per batch and target: the unique pair is the lock, ``expires_at``
    lets a crashed run's lease be taken over."""

    __tablename__ = "run_lease"
    __table_args__ = (UniqueConstraint("batch_id", "cloud_api_id", name="uq_lease_batch_target"),)

    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="batch.id")
    cloud_api_id: int = Field(foreign_key="cloud_api.id")
    holder: str = Field(max_length=128)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AccountSettings(SQLModel, table=True):
    """Per-account toggle: provision automatically on bind, into the default Product Cloud API."""

    __tablename__ = "account_settings"

    account_id: int = Field(foreign_key="account.id", primary_key=True)
    auto_provision: bool = False
    default_cloud_api_id: int | None = Field(default=None, foreign_key="cloud_api.id")
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_by: str = Field(max_length=320)


class ShardLease(SQLModel, table=True):
    """A slice of one run's devices (by Device.id range), claimed by one shard flow run at a time.

    ``holder`` and ``expires_at`` are the claim; a shard whose holder stops renewing is taken over
    after expiry. ``finished_at`` is set only after every device of the range was tried."""

    __tablename__ = "shard_lease"
    __table_args__ = (UniqueConstraint("batch_id", "cloud_api_id", "shard", name="uq_shard_batch_target"),)

    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="batch.id")
    cloud_api_id: int = Field(foreign_key="cloud_api.id")
    shard: int
    first_device_id: int
    last_device_id: int
    holder: str | None = Field(default=None, max_length=128)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    flow_run_id: str | None = Field(default=None, max_length=64)
    launches: int = 0
    already_present: int = 0
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class QuotaPace(SQLModel, table=True):
    """The next free call slot of a target, shared by every process: a call reserves slots by moving
    ``next_at`` (epoch seconds) on by 1/rate each, under the row's lock. ``api_call`` '' is the call
    whose quota binds (aws-iot's RegisterCertificateWithoutCA, an interop request); aws-iot's follow-up
    calls get a row each while several processes share the target."""

    __tablename__ = "quota_pace"

    cloud_api_id: int = Field(foreign_key="cloud_api.id", primary_key=True)
    api_call: str = Field(default="", primary_key=True, max_length=64)
    next_at: float = 0.0
    paused_until: float = 0.0


class AccountSettingsPublic(SQLModel):
    """The account's auto-provision setting."""

    model_config = {"extra": "forbid"}

    enabled: bool = Field(description="provision automatically on bind")
    cloud_api: str | None = Field(description="into this Product Cloud API")
