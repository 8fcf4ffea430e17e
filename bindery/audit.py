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
from bindery.models.accounts import Account, User
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


def account_names(*, session: Session, events: list[AuditEventPublic]) -> dict[int, str]:
    """Each event's account by name, for the operator's view across accounts (a transfer is an event in
    both); the operator's catalog work has none."""
    rows = session.exec(select(AuditEvent.id, Account.name).join(Account, col(AuditEvent.account_id) == Account.id)
                        .where(col(AuditEvent.id).in_([event.id for event in events]))).all()
    return {int(event_id): str(name) for event_id, name in rows if event_id is not None}


# ---- events as sentences (the console's audit page, `bindery audit`) ------------------------------------

# What each audited action did, in words; ``{subject}`` and the event's detail fill them in.
SENTENCES = {
    "account.create": "created account {subject}",
    "user.add": "added {role} {subject} to {account}",
    "user.set_password": "set the console password of {subject}",
    "token.create": "created API token “{name}” for {subject}",
    "token.revoke": "revoked API token {subject}",
    "web.login": "logged in to the console",
    "web.login_failed": "failed to log in as {subject}",
    "web.logout": "logged out of the console",
    "batch.bind": "bound batch {subject} ({devices} devices) to {account}",
    "batch.unbind": "unbound batch {subject} from {account}",
    "batch.set_target": "set the target of {subject} to {cloud_api}",
    "manifest.export": "exported the Manifest File of {subject} ({rows} devices)",
    "cloud_api.add": "added Product Cloud API {subject} ({kind})",
    "cloud_api.update": "changed Product Cloud API {subject}: {fields}",
    "cloud_api.remove": "removed Product Cloud API {subject}",
    "settings.auto_provision": "turned automatic provisioning on bind {enabled}",
    "provision.start": "started provisioning {subject} into {cloud_api} ({devices} devices to do)",
    "provision.finish": "finished provisioning {subject} into {cloud_api}: {provisioned} provisioned, "
                        "{failed} not",
    "deprovision": "removed {removed} devices of {subject} from {cloud_api}{forget}; {failed} failed",
    "lease.release": "released the run lease of {subject} in {cloud_api}",
    "reconcile.repair": "repaired {subject} in {cloud_api}: {recorded} recorded, {reprovision} to provision again",
    "reel.import": "imported reel {subject} ({devices} devices, {skipped} skipped)",
    "trust.add": "trusted {kind} {subject}",
    "signing_key.create": "created token signing key {subject}",
    "transfer.offer": "offered batch {subject} ({devices} devices) from {from_account} to {to_account}",
    "transfer.withdraw": "withdrew the offer of batch {subject} to {to_account}",
    "transfer.accept": "accepted batch {subject} ({devices} devices) from {from_account} into {to_account}",
    "transfer.refused": "tried to offer batch {subject} to {to_account}: {reason}",
    "transfer.wrong_code": "tried a transfer code that is not one of this account's offers",
    "transfer.expired": "tried the expired transfer code of batch {subject} (offered by {from_account})",
    "batch.split": "split {moved} devices of batch {parent} into {new_bid} ({left} left in {parent})",
}
HIDDEN = {"sha256", "out", "source", "fingerprint", "token_id", "holder"}  # ids and server paths, not for a page


class _Detail(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


def _word(key: str, value: Any) -> str:
    if key == "enabled":
        return "on" if value else "off"
    if key == "forget":
        return " (records only)" if value else ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "nothing"
    return "" if value is None else str(value)


def describe(event: AuditEventPublic) -> str:
    """One sentence for an audit event (detail filled in; ids, digests and server paths left out)."""
    try:
        detail = json.loads(event.detail or "{}")
    except ValueError:
        detail = {}
    if not isinstance(detail, dict):
        detail = {}
    words = _Detail({key: _word(key, value) for key, value in detail.items()})
    words["subject"] = event.subject
    if event.action == "settings.auto_provision" and detail.get("enabled") and detail.get("cloud_api"):
        words["enabled"] = f"on, into {detail['cloud_api']}"
    sentence = SENTENCES.get(event.action)
    if event.action == "batch.split" and event.subject == detail.get("new_bid"):  # the new part's own event
        sentence = "made batch {new_bid} of {moved} devices split off batch {parent}"
    if sentence is not None:
        return sentence.format_map(words)
    rest = ", ".join(f"{key.replace('_', ' ')} {words[key]}" for key in sorted(detail) if key not in HIDDEN)
    return f"{event.action.replace('.', ' ').replace('_', ' ')} {event.subject}" + (f" ({rest})" if rest else "")
