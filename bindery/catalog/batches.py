"""Reading the catalog: batches as the operator sees them."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from bindery.errors import NotFound
from bindery.models.catalog import Batch


def batch_summary(batch: Batch) -> dict[str, Any]:
    return {
        "bid": batch.bid, "vendor": batch.vendor, "model": batch.model, "slot": batch.slot,
        "devices": batch.device_count, "format": batch.source_format, "source": batch.source_name,
        "sha256": batch.source_sha256, "imported_at": batch.imported_at.isoformat(),
    }


def list_batches(*, session: Session) -> list[Batch]:
    return list(session.exec(select(Batch).order_by(Batch.bid)).all())


def get_batch(*, session: Session, bid: str) -> Batch:
    batch = session.exec(select(Batch).where(Batch.bid == bid)).first()
    if batch is None:
        raise NotFound(f"unknown BID {bid}")
    return batch
