"""Writing audit events: in the caller's session, so the event commits with the change it records."""

from __future__ import annotations

import getpass
import json
from typing import Any

from sqlmodel import Session, select

from bindery.models.accounts import User
from bindery.models.audit import AuditEvent


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
