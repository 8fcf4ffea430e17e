"""Passwords, personal API tokens and browser sessions: plain functions the CLI and the web app share.

Only hashes are stored: argon2id for passwords, SHA-256 for tokens and session ids (both are 256-bit
random values, so a fast hash is enough). Failed logins are counted per email and per client address over a window.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import case, delete, or_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from bindery import audit
from bindery.access import Actor, actor_for, normalise_email
from bindery.errors import BadInput, BinderyError, NotFound, TooManyAttempts
from bindery.models.accounts import User
from bindery.models.web import ApiToken, LoginThrottle, WebSession
from bindery.settings import Settings

TOKEN_PREFIX = "bdy_"
SESSION_HOURS = 12
MIN_PASSWORD = 10


class NotAuthenticated(BinderyError):
    """No valid token, session or password (HTTP 401)."""


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _user(session: Session, email: str) -> User:
    user = session.exec(select(User).where(User.email == normalise_email(email))).first()
    if user is None:
        raise NotFound(f"unknown user {normalise_email(email)}")
    return user


def set_password(*, session: Session, email: str, password: str, actor: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise BadInput(f"password too short: use at least {MIN_PASSWORD} characters")
    user = _user(session, email)
    user.password_hash = _hasher().hash(password)
    session.add(user)
    session.execute(delete(WebSession).where(col(WebSession.user_id) == user.id))  # log out everywhere
    audit.record(session=session, actor=actor, action="user.set_password", subject=user.email,
                 account_id=user.account_id)


@dataclass(frozen=True)
class LoginLimits:
    per_email: int
    per_client: int
    window: timedelta

    @classmethod
    def of(cls, settings: Settings) -> LoginLimits:
        return cls(settings.login_max_failures, settings.login_max_failures_per_client,
                   timedelta(seconds=settings.login_window_seconds))


def _throttle_keys(email: str, client: str | None, limits: LoginLimits) -> list[tuple[str, int]]:
    keys = [(f"email:{normalise_email(email)[:320]}", limits.per_email)]
    if client:
        keys.append((f"client:{client[:64]}", limits.per_client))
    return keys


def _insert_ignoring_conflict(session: Session, key: str, now: datetime) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(LoginThrottle).values(key=key, window_start=now, failures=0)
                    .on_conflict_do_nothing(index_elements=["key"]))


def claim_login_attempt(*, session: Session, email: str, client: str | None, limits: LoginLimits) -> None:
    """Take one slot per key before a password is checked, each in one ``UPDATE … RETURNING`` (the row
    lock makes concurrent claims queue), or raise TooManyAttempts. Commit before checking the password."""
    now = datetime.now(UTC)
    since = now - limits.window
    for key, limit in _throttle_keys(email, client, limits):
        _insert_ignoring_conflict(session, key, now)
        expired = col(LoginThrottle.window_start) < since
        open_slot = or_(expired, col(LoginThrottle.failures) < limit)
        claimed = session.execute(
            update(LoginThrottle).where(col(LoginThrottle.key) == key, open_slot)
            .values(failures=case((expired, 1), else_=col(LoginThrottle.failures) + 1),
                    window_start=case((expired, now), else_=col(LoginThrottle.window_start)))
            .returning(col(LoginThrottle.failures))).first()
        if claimed is None:
            minutes = int(limits.window.total_seconds() // 60)
            raise TooManyAttempts(f"too many failed logins; try again in {minutes} minutes",
                                  retry_after_seconds=int(limits.window.total_seconds()))


def release_login_attempt(*, session: Session, email: str, client: str | None, limits: LoginLimits) -> None:
    """A successful login gives back the slot it claimed: only failures count."""
    for key, _limit in _throttle_keys(email, client, limits):
        session.execute(update(LoginThrottle).where(col(LoginThrottle.key) == key, col(LoginThrottle.failures) > 0)
                        .values(failures=col(LoginThrottle.failures) - 1))


@cache
def _dummy_hash() -> str:
    """A hash to verify against when the email is unknown, so both cases cost one argon2 verify."""
    return _hasher().hash(secrets.token_urlsafe(16))


def check_login(*, session: Session, email: str, password: str) -> Actor:
    """The user for a correct email and password; one message, and one argon2 verify, for every wrong
    combination (known or unknown email alike). Call only after claim_login_attempt."""
    user = session.exec(select(User).where(User.email == normalise_email(email or ""))).first()
    stored = user.password_hash if user is not None and user.password_hash else None
    try:
        _hasher().verify(stored or _dummy_hash(), password)
        if stored is None:
            raise VerificationError()
    except (VerificationError, InvalidHashError):
        raise NotAuthenticated("wrong email or password") from None
    assert user is not None
    return actor_for(session=session, email=user.email)


def record_login_failure(*, session: Session, email: str) -> None:
    """Audit a failed login (in its own transaction: the failed attempt's was rolled back)."""
    email = (email or "").strip().lower()[:320]
    audit.record(session=session, actor=email or "anonymous", action="web.login_failed", subject=email)


def create_token(*, session: Session, email: str, name: str, actor: str) -> tuple[str, ApiToken]:
    """A new token, returned once; only its hash is stored."""
    name = (name or "").strip()
    if not name or len(name) > 64 or not name.isprintable():
        raise BadInput("invalid token name: use 1 to 64 printable characters")
    user = _user(session, email)
    assert user.id is not None
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name, prefix=token[:10], token_sha256=sha256(token))
    session.add(row)
    session.flush()
    audit.record(session=session, actor=actor, action="token.create", subject=user.email, token_id=row.id,
                 name=name, account_id=user.account_id)
    return token, row


def list_tokens(*, session: Session, email: str | None = None) -> list[dict[str, object]]:
    query = select(ApiToken, User.email).join(User, col(User.id) == col(ApiToken.user_id)).order_by(col(ApiToken.id))
    if email:
        query = query.where(User.email == normalise_email(email))
    return [{"id": t.id, "user": e, "name": t.name, "prefix": t.prefix, "created_at": t.created_at.isoformat(),
             "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
             "revoked": t.revoked_at is not None} for t, e in session.exec(query).all()]


def revoke_token(*, session: Session, token_id: int, actor: str) -> None:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"unknown token {token_id}")
    row.revoked_at = row.revoked_at or datetime.now(UTC)
    session.add(row)
    owner = session.get(User, row.user_id)
    audit.record(session=session, actor=actor, action="token.revoke", subject=str(token_id),
                 account_id=owner.account_id if owner else None)


def actor_for_token(*, session: Session, token: str) -> Actor:
    row = session.exec(select(ApiToken).where(ApiToken.token_sha256 == sha256(token))).first()
    if row is None or row.revoked_at is not None:
        raise NotAuthenticated("invalid or revoked API token")
    session.execute(update(ApiToken).where(col(ApiToken.id) == row.id).values(last_used_at=datetime.now(UTC)))
    user = session.get(User, row.user_id)
    assert user is not None
    return actor_for(session=session, email=user.email)


def start_session(*, session: Session, actor: Actor) -> tuple[str, str]:
    """(cookie value, CSRF token) of a new browser session."""
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(WebSession(session_sha256=sha256(cookie), user_id=actor.user_id, csrf_token=csrf,
                           expires_at=datetime.now(UTC) + timedelta(hours=SESSION_HOURS)))
    audit.record(session=session, actor=actor.email, action="web.login", subject=actor.email)
    return cookie, csrf


def session_actor(*, session: Session, cookie: str) -> tuple[Actor, str]:
    """(user, CSRF token) of a live browser session."""
    row = session.exec(select(WebSession).where(WebSession.session_sha256 == sha256(cookie))).first()
    if row is None or row.expires_at < datetime.now(UTC):
        raise NotAuthenticated("not logged in or the session expired")
    user = session.get(User, row.user_id)
    assert user is not None
    return actor_for(session=session, email=user.email), row.csrf_token


def end_session(*, session: Session, cookie: str) -> None:
    row = session.exec(select(WebSession).where(WebSession.session_sha256 == sha256(cookie))).first()
    if row is not None:
        user = session.get(User, row.user_id)
        session.delete(row)
        audit.record(session=session, actor=user.email if user else "unknown", action="web.logout",
                     subject=user.email if user else "")
