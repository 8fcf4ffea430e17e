"""The device catalog: reels (batches), their devices and the trust anchors they chain to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, LargeBinary, Text
from sqlmodel import Field, SQLModel

from bindery.models.types import UTCDateTime, utcnow


class BatchBase(SQLModel):
    bid: str = Field(max_length=64, unique=True, index=True)
    vendor: str = Field(max_length=32)
    model: str | None = Field(default=None, max_length=128)
    slot: str | None = Field(default=None, max_length=16)
    device_count: int
    source_format: str = Field(max_length=32)
    source_name: str = Field(max_length=512)
    source_sha256: str = Field(max_length=64, index=True)


class Batch(BatchBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    imported_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    split_from_id: int | None = Field(default=None, foreign_key="batch.id",
                                      description="the batch this one was cut from (bindery batch split)")


class DeviceBase(SQLModel):
    device_id: str = Field(max_length=128, unique=True, index=True)
    fingerprint_sha256: str = Field(max_length=64, unique=True, index=True)
    subject_cn: str | None = Field(default=None, max_length=256)
    serial_hex: str = Field(max_length=64)
    issuer: str = Field(max_length=1024)
    key_type: str = Field(max_length=32)
    not_before: datetime = Field(sa_type=UTCDateTime)
    not_after: datetime = Field(sa_type=UTCDateTime)


class Device(DeviceBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="batch.id", index=True)
    certificate_pem: str = Field(sa_column=Column(Text, nullable=False))


class TrustAnchorBase(SQLModel):
    kind: str = Field(max_length=32, description="root, intermediate or manifest_signer")
    subject: str = Field(max_length=1024)
    issuer: str = Field(max_length=1024)
    fingerprint_sha256: str = Field(max_length=64, unique=True, index=True)
    key_id: str | None = Field(default=None, max_length=128, index=True, description="base64url SKI")
    not_before: datetime = Field(sa_type=UTCDateTime)
    not_after: datetime = Field(sa_type=UTCDateTime)


class TrustAnchor(TrustAnchorBase, table=True):
    __tablename__ = "trust_anchor"

    id: int | None = Field(default=None, primary_key=True)
    der: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    added_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
