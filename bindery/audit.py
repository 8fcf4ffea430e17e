"""Writing audit events: in the caller's session, so the event commits with the change it records."""

from __future__ import annotations

import getpass
import json
from typing import Any

from sqlmodel import Session

from bindery.models.audit import AuditEvent


def operator_name() -> str:
    try:
        return f"operator:{getpass.getuser()}"
    except (KeyError, OSError):
        return "operator"


def record(*, session: Session, actor: str, action: str, subject: str, **detail: Any) -> AuditEvent:
    event = AuditEvent(actor=actor, action=action, subject=subject,
                       detail=json.dumps(detail, default=str, sort_keys=True))
    session.add(event)
    return event
