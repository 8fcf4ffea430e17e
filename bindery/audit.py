"""The audit log: written in the caller's session (the event commits with the change it records), read by
admins for their account and by the operator for all."""

from __future__ import annotations

import getpass
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from bindery.access import Action, Actor, require
from bindery.errors import BadInput
from bindery.models.accounts import User
from bindery.models.audit import AuditEvent, AuditEventPublic
from bindery.models.types import utcnow


def operator_name() -> str:
    try:
        return f"operator:{getpass.getuser()}"
    except (KeyError, OSError):
        return "operator"


def record(*, session: Session, actor: str, action: str, subject: str, account_id: int | None = None,
           **detail: Any) -> AuditEvent:
    """One event; its account is the acting user's unless given (an operator's catalog work has none)."""
    if account_id is None:
        account_id = session.exec(select(User.account_id).where(User.email == actor)).first()
    event = AuditEvent(actor=actor, action=action, subject=subject, account_id=account_id,
                       detail=json.dumps(detail, default=str, sort_keys=True))
    session.add(event)
    return event


MAX_EVENTS = 500
SINCE = re.compile(r"^(\d{1,5})([mhd])$")


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """``30m``, ``24h``, ``7d`` back from now, or an ISO 8601 date or time (UTC unless it says)."""
    if not text:
        return None
    text = text.strip()
    relative = SINCE.fullmatch(text)
    if relative:
        amount, unit = int(relative[1]), relative[2]
        return (now or utcnow()) - timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: amount})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"since: {text[:40]!r} is neither 30m, 24h, 7d nor an ISO date like 2026-11-28") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read(*, session: Session, actor: Actor | None, since: datetime | None = None, user: str | None = None,
         bid: str | None = None, limit: int = 100, before: int | None = None,
         account_id: int | None = None) -> list[AuditEventPublic]:
    """Newest first; ``before`` (an event id) pages back. An admin reads the account's events (another
    account's BID simply has none); ``actor`` None is the operator at the server, who reads them all
    (or one ``account_id``'s)."""
    if actor is not None:
        require(actor, Action.READ_AUDIT)
        account_id = actor.account_id
    if not 1 <= limit <= MAX_EVENTS:
        raise BadInput(f"limit: {limit} is not from 1 to {MAX_EVENTS}")
    query = select(AuditEvent)
    if account_id is not None:
        query = query.where(AuditEvent.account_id == account_id)
    if since is not None:
        query = query.where(col(AuditEvent.at) >= since)
    if user:
        query = query.where(AuditEvent.actor == user.strip().lower())
    if bid:
        query = query.where(AuditEvent.subject == bid)
    if before is not None:
        query = query.where(col(AuditEvent.id) < before)
    rows = session.exec(query.order_by(col(AuditEvent.id).desc()).limit(limit)).all()
    return [AuditEventPublic.model_validate(row, from_attributes=True) for row in rows]
