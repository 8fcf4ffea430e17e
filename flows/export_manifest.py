"""Flow `export-manifest`: write a batch's Manifest File."""

from __future__ import annotations

from typing import Any

from prefect import flow

from bindery.tasks import artifacts
from bindery.tasks.binding import batch_view
from bindery.tasks.binding import export_manifest as export_task


@flow(name="export-manifest", description="Write a batch's Manifest File (device_id,group_id,certificate).")
def export_manifest(bid: str, user: str, out: str) -> dict[str, Any]:
    """Write the batch's Manifest File.

    Args:
        bid: Product Batch ID.
        user: Email of the acting admin.
        out: File the worker writes (.gz compresses).
    """
    report = export_task(bid, user, out)
    view = batch_view(bid, user)
    artifacts.publish_table("manifest", bid, [{
        "BID": bid, "vendor": view["vendor"], "model": view["model"] or "", "devices": view["devices"],
        "rows written": report.rows, "file": out, "sha256": report.sha256 or "",
    }], description=f"Manifest File of batch {bid}")
    return {"bid": bid, "rows": report.rows, "out": out, "sha256": report.sha256}
