"""Ownership and roles: the one place the CLI, the flows and the HTTP API ask who may do what.

Members and admins may bind. Only admins may pick a Product Cloud API when binding, export
manifests, unbind, configure Product Cloud APIs, provision, transfer and split. A batch on offer to
another account is provisioned, unbound or split by nobody until the offer is accepted or withdrawn.
A user sees and acts only on its own account's batches; a batch of another account answers exactly like an unknown BID.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlmodel import Session, col, select

from bindery.errors import BadInput, BinderyError, NotFound, PermissionDenied
from bindery.models.accounts import Account, Binding, User
from bindery.models.catalog import Batch
from bindery.models.clouds import CloudApi
from bindery.models.provisioning import RunLease
from bindery.models.transfers import OFFERED, Transfer
from bindery.models.types import utcnow

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


class Action(StrEnum):
    BIND = "bind batches"
    PICK_CLOUD_API = "pick a Product Cloud API when binding"
    UNBIND = "unbind batches"
    EXPORT_MANIFEST = "export manifests"
    CONFIGURE_CLOUD_API = "configure Product Cloud APIs"
    PROVISION = "provision devices"
    AUTO_PROVISION = "provision on bind as the account's auto-provision setting says"
    VIEW = "view batches"
    READ_AUDIT = "read the audit log"
    TRANSFER = "offer, accept or withdraw batch transfers"
    SPLIT = "split batches"


# Auto-provisioning follows a bind under the setting an admin chose, so members trigger it too.
MEMBER_ACTIONS = frozenset({Action.BIND, Action.VIEW, Action.AUTO_PROVISION})


@dataclass(frozen=True)
class Actor:
    """The acting user, resolved once per command or request."""

    user_id: int
    email: str
    role: Role
    account_id: int
    account_name: str


def normalise_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not EMAIL.fullmatch(email) or len(email) > 320:
        raise BadInput(f"invalid email {email!r}")
    return email


def actor_for(*, session: Session, email: str | None) -> Actor:
    if not email:
        raise BadInput("no acting user: give --user EMAIL or set BINDERY_USER")
    email = normalise_email(email)
    row = session.exec(select(User, Account).join(Account).where(User.email == email)).first()
    if row is None:
        raise BadInput(f"unknown user {email}")
    user, account = row
    assert user.id is not None and account.id is not None
    return Actor(user.id, user.email, Role(user.role), account.id, account.name)


def may(actor: Actor, action: Action) -> bool:
    return actor.role is Role.ADMIN or action in MEMBER_ACTIONS


def require(actor: Actor, action: Action) -> None:
    if not may(actor, action):
        raise PermissionDenied(f"{actor.email} is a member of account {actor.account_name}: only admins may {action}")


def unknown_bid(bid: str) -> NotFound:
    """The one error for a BID that does not exist *or* belongs to another account."""
    return NotFound(f"unknown BID {bid}")


def owned_batch(*, session: Session, actor: Actor, bid: str, action: Action = Action.VIEW,
                lock: bool = False) -> tuple[Batch, Binding]:
    """The actor's account's batch, after the role check; anything else is an unknown BID. ``lock`` holds
    the batch and its binding until the transaction ends (PostgreSQL's FOR UPDATE; SQLite's BEGIN IMMEDIATE
    already holds the whole file), read as the last commit left them: what a split, an offer or a starting
    run decides on cannot change under it."""
    require(actor, action)
    row = session.exec(_held_by(select(Batch, Binding), actor.account_id, Batch.bid == bid, lock)).first()
    if row is None:
        raise unknown_bid(bid)
    return row


def batch_held_by(*, session: Session, batch_id: int, account_id: int, lock: bool = False) -> Batch | None:
    """The batch while that account holds it (None once it was given away or unbound); ``lock`` as in
    :func:`owned_batch`. For work authorised earlier (a run under its lease, reconcile's repair) that must
    decide on the batch as it is now."""
    return session.exec(_held_by(select(Batch), account_id, col(Batch.id) == batch_id, lock)).first()


def _held_by(query: Any, account_id: int, which: Any, lock: bool) -> Any:
    query = query.join(Binding, col(Binding.batch_id) == col(Batch.id)).where(which, Binding.account_id == account_id)
    return query.with_for_update().execution_options(populate_existing=True) if lock else query


def on_offer(*, session: Session, batch: Batch) -> bool:
    """Whether the batch has an open offer (one not yet expired)."""
    return session.exec(select(Transfer.id).where(Transfer.batch_id == batch.id, Transfer.state == OFFERED,
                                                  col(Transfer.expires_at) > utcnow())).first() is not None


def refuse_while_on_offer(*, session: Session, batch: Batch, doing: str) -> None:
    """A batch on offer stays as the receiver will get it: no run, unbind or split starts on it."""
    if on_offer(session=session, batch=batch):
        raise BinderyError.with_fix(
            lambda fix: f"batch {batch.bid} is on offer to another account: withdraw the offer {fix} "
                        f"before you {doing}",
            cli=f"(bindery batch withdraw {batch.bid})", page="on its page",
            api=f"(DELETE /api/batches/{batch.bid}/transfer)")


def refuse_while_running(*, session: Session, batch: Batch, doing: str) -> None:
    """A batch a run holds (its lease is live) keeps its owner and its devices until the run ends. A lease
    whose holder process is gone (killed on this host) holds nothing, as a new run would take it over at
    once; one held from another host may be a lost host's: the refusal says until when it runs and, on the
    CLI, how to release it. Only the owner's targets count: a lease an earlier owner's run left in its own
    target (it took the lease, then found the batch given away) holds nothing of the batch now, and its
    target's name is not the owner's to read."""
    from bindery.provisioning.lease import holder_is_dead

    owner = select(Binding.account_id).where(Binding.batch_id == batch.id).scalar_subquery()
    rows = session.exec(select(CloudApi.name, RunLease.holder, RunLease.expires_at)
                        .join(RunLease, col(RunLease.cloud_api_id) == col(CloudApi.id))
                        .where(RunLease.batch_id == batch.id, col(RunLease.expires_at) > utcnow(),
                               col(CloudApi.account_id) == owner)  # an earlier owner's target: not its run
                        .order_by(col(CloudApi.name))).all()
    live = [(name, until) for name, holder, until in rows if not holder_is_dead(holder)]
    if live:
        name, until = live[0]
        raise BinderyError.with_fix(
            lambda fix: f"a provisioning run holds batch {batch.bid} in {name} (its lease runs until "
                        f"{until:%H:%M:%S} UTC): wait for it to end before you {doing}{fix}",
            cli=f"; if no run is going (its host was lost), release the lease first: bindery lease release "
                f"{batch.bid} --cloud-api {name}", page="", api="")
