"""Passwords, personal API tokens and browser sessions: plain functions the CLI and the web app share.

Only hashes are stored: argon2id for passwords, SHA-256 for tokens and session ids (both are 256-bit
random values, so a fast hash is enough). Failed logins are counted per email over a window.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, update
from sqlmodel import Session, col, select

from bindery import audit
from bindery.access import Actor, actor_for, normalise_email
from bindery.errors import BadInput, BinderyError, NotFound
from models.accounts import User
from models.web import ApiToken, LoginFailure, WebSession

TOKEN_PREFIX = "bdy_"
SESSION_HOURS = 12
MAX_FAILURES, FAILURE_WINDOW = 5, timedelta(minutes=15)
MIN_PASSWORD = 10


class NotAuthenticated(BinderyError):
    """No valid token, session or password (HTTP 401)."""


class TooManyAttempts(BinderyError):
    """Login refused for a while after repeated failures (HTTP 429)."""


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
    audit.record(session=session, actor=actor, action="user.set_password", subject=user.email)


def check_login(*, session: Session, email: str, password: str) -> Actor:
    """The user for a correct email and password; one message for every wrong combination."""
    email = (email or "").strip().lower()
    since = datetime.now(UTC) - FAILURE_WINDOW
    failures = session.exec(select(func.count()).select_from(LoginFailure).where(
        col(LoginFailure.email) == email, col(LoginFailure.at) > since)).one()
    if failures >= MAX_FAILURES:
        minutes = FAILURE_WINDOW.seconds // 60
        raise TooManyAttempts(f"too many failed logins for {email}; try again in {minutes} minutes")
    user = session.exec(select(User).where(User.email == email)).first()
    try:
        if user is None or user.password_hash is None:
            raise VerificationError()
        _hasher().verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise NotAuthenticated("wrong email or password") from None
    session.execute(delete(LoginFailure).where(col(LoginFailure.email) == email))
    return actor_for(session=session, email=user.email)


def record_login_failure(*, session: Session, email: str) -> None:
    """Count a failed login (in its own transaction: the failed attempt's was rolled back)."""
    email = (email or "").strip().lower()[:320]
    session.add(LoginFailure(email=email))
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
                 name=name)
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
    audit.record(session=session, actor=actor, action="token.revoke", subject=str(token_id))


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
