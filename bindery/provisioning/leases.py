"""Run leases as a person sees them: which batch and target a run holds, and clearing a stuck one.

A lease normally needs no person: it is released on every way out of a run, taken over at once when
its holder process (or run) is gone, and expires otherwise. Clearing one by hand is for an admin who
knows no run is going (a host lost for good); it is audited.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from bindery import audit
from bindery.access import Action, Actor, owned_batch, require
from bindery.clouds.config import get_cloud_api
from bindery.errors import NotFound
from bindery.models.accounts import Binding
from bindery.models.catalog import Batch
from bindery.models.clouds import CloudApi
from bindery.models.provisioning import RunLease


def list_leases(*, session: Session, actor: Actor) -> list[dict[str, Any]]:
    """The account's held leases (admins), in its own targets."""
    require(actor, Action.PROVISION)
    now = datetime.now(UTC)
    # its own targets only: a transferred batch's lease in an earlier owner's target is that owner's
    rows = session.exec(
        select(RunLease, Batch.bid, CloudApi.name).join(Batch, col(Batch.id) == col(RunLease.batch_id))
        .join(Binding, col(Binding.batch_id) == col(Batch.id))
        .join(CloudApi, col(CloudApi.id) == col(RunLease.cloud_api_id))
        .where(Binding.account_id == actor.account_id, col(CloudApi.account_id) == actor.account_id)
        .order_by(col(Batch.bid), col(CloudApi.name))).all()
    return [{"bid": bid, "cloud_api": name, "holder": lease.holder, "since": lease.created_at.isoformat(),
             "expires_at": lease.expires_at.isoformat(), "expired": lease.expires_at < now}
            for lease, bid, name in rows]


def clear_lease(*, session: Session, actor: Actor, bid: str, cloud_api: str) -> str:
    """Delete the lease of ``bid`` into ``cloud_api``; the holder it had."""
    batch, _binding = owned_batch(session=session, actor=actor, bid=bid, action=Action.PROVISION)
    api = get_cloud_api(session=session, actor=actor, name=cloud_api)
    held = session.exec(select(RunLease).where(RunLease.batch_id == batch.id,
                                               col(RunLease.cloud_api_id) == api.id)).first()
    if held is None:
        raise NotFound(f"no run holds batch {batch.bid} into {api.name}")
    session.execute(delete(RunLease).where(col(RunLease.id) == held.id))
    audit.record(session=session, actor=actor.email, action="lease.release", subject=batch.bid,
                 cloud_api=api.name, holder=held.holder)
    return held.holder
