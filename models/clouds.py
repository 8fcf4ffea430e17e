"""Product Cloud APIs of an account, and the key pair that signs Bindery's interop tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bindery.models.types import UTCDateTime, utcnow


class CloudApiBase(SQLModel):
    name: str = Field(max_length=64)
    kind: str = Field(max_length=32, description="aws, azure, other, aws-iot or azure-iot-hub")


class CloudApi(CloudApiBase, table=True):
    __tablename__ = "cloud_api"
    __table_args__ = (UniqueConstraint("account_id", "name", name="uq_cloud_api_account_name"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    settings_json: str = Field(sa_column=Column(Text, nullable=False), description="non-secret settings")
    secret_token: str | None = Field(default=None, sa_column=Column(Text, nullable=True),
                                     description="Fernet token of the secret setting, if the kind has one")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str = Field(max_length=320)


class CloudApiPublic(CloudApiBase):
    """What an admin may see of a Product Cloud API: its kind's settings as further string fields (the
    secret one, ``credentials`` or ``connection_string``, only as a placeholder)."""

    model_config = {"extra": "allow", "json_schema_extra": {"additionalProperties": {"type": ["string", "null"]}}}

    created_at: datetime
    created_by: str = Field(description="email of the admin who added it")


class SigningKey(SQLModel, table=True):
    """ES256 key pair for interop JWTs; the private key is encrypted like every other secret."""

    __tablename__ = "signing_key"

    id: int | None = Field(default=None, primary_key=True)
    kid: str = Field(max_length=64, unique=True)
    public_pem: str = Field(sa_column=Column(Text, nullable=False))
    private_token: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
