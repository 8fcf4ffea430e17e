"""Flow `bind-batch`: claim a batch for the user's account by its BID."""

from __future__ import annotations

from typing import Any

from prefect import flow

from bindery.tasks import artifacts
from bindery.tasks.binding import batch_view
from bindery.tasks.binding import bind_batch as bind_task


@flow(name="bind-batch", description="Bind a catalog batch to the user's account by its Product Batch ID.")
def bind_batch(bid: str, user: str) -> dict[str, Any]:
    """Bind a batch to the user's account; binding it again is a no-op.

    Args:
        bid: Product Batch ID.
        user: Email of the acting user (member or admin).
    """
    outcome = bind_task(bid, user)
    view = batch_view(bid, user)
    artifacts.publish_table("bind", bid, [{"BID": bid, "account": view["account"], "devices": outcome.devices,
                                           "bound": view["bound"], "bound by": view["bound_by"],
                                           "already bound": outcome.already}],
                            description=f"Binding of batch {bid}")
    return {"bid": bid, "devices": outcome.devices, "already_bound": outcome.already}
