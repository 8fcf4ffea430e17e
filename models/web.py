"""Console and HTTP API credentials: personal API tokens and browser sessions, both stored hashed."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from bindery.models.types import UTCDateTime, utcnow


class ApiTokenBase(SQLModel):
    name: str = Field(max_length=64, description="what the token is for (e.g. erp)")
    prefix: str = Field(max_length=16, description="first characters, to tell tokens apart in lists")


class ApiToken(ApiTokenBase, table=True):
    """Only the SHA-256 of the token is kept; the token is shown once, at creation."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    token_sha256: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebSession(SQLModel, table=True):
    """A browser session after login: the cookie holds the id, the table its SHA-256 and the CSRF token."""

    __tablename__ = "web_session"

    id: int | None = Field(default=None, primary_key=True)
    session_sha256: str = Field(max_length=64, unique=True, index=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class LoginThrottle(SQLModel, table=True):
    """Failed logins in the current window, per key (``email:<address>`` or ``client:<ip>``). A login
    claims a slot here, in one UPDATE, *before* its password is checked, so concurrent attempts cannot
    check more passwords than the limit; a success gives its slot back."""

    __tablename__ = "login_throttle"

    key: str = Field(primary_key=True, max_length=400)
    window_start: datetime = Field(sa_type=UTCDateTime)
    failures: int = Field(default=0)
