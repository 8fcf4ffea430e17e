"""Flow `import-reel`: a vendor reel into the catalog, verified in chunks."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from prefect import flow, unmapped

from bindery.catalog.importer import discard_spool
from bindery.catalog.parallel import release_workers
from bindery.errors import ReelRejected
from bindery.tasks import artifacts, catalog


@flow(name="import-reel", description="Import a vendor reel file into the catalog, verifying every certificate.")
def import_reel(path: str, bid: str | None = None, format: str = "auto", slot: str = "E0E0",
                skip_invalid: bool = False, at: datetime | None = None, actor: str | None = None) -> dict[str, Any]:
    """Import the reel at ``path`` into the catalog.

    Args:
        path: Reel file (or folder of .pem files) on a path the worker can read.
        bid: Product Batch ID, when the file carries none.
        format: auto, bindery-csv, infineon, microchip, espressif or pem.
        slot: Infineon certificate set: E0E0 (ECC), E0E1 or E0E2 (RSA).
        skip_invalid: Import the valid entries and report the rest instead of rejecting the reel.
        at: Verify validity at this time instead of now.
        actor: Who to name in the audit log (default: the worker's operator).
    """
    plan = catalog.read_reel(path, bid, format, slot)
    try:
        if plan.already_imported:
            summary = {"bid": plan.bid, "source": plan.source_name, "imported": 0, "already_imported": True}
        else:
            futures = catalog.verify_chunk.map(unmapped(plan), range(len(plan.raw_chunks)),
                                               unmapped(at or datetime.now(UTC)))
            verdicts = [future.result() for future in futures]
            try:
                report = catalog.store_reel(plan, verdicts, skip_invalid, actor)
            except ReelRejected as exc:
                artifacts.publish_problems("reel-rejected", plan.bid, str(exc), exc.problems)
                raise
            summary = {"bid": report.bid, "source": report.source_name, "imported": report.imported,
                       "already_imported": False, "skipped": len(report.problems),
                       "verify_processes": len({v.process for v in verdicts} - {os.getpid()})}
            if report.problems:
                artifacts.publish_problems("reel-skipped", plan.bid, f"{len(report.problems)} entries skipped",
                                           report.problems)
    finally:
        release_workers()
        discard_spool(plan)
    artifacts.publish_table("reel", plan.bid, [{
        "BID": plan.bid, "vendor": plan.vendor, "model": plan.model or "", "format": plan.format,
        "slot": plan.slot or "", "entries": plan.entries, "imported": summary["imported"],
        "already imported": summary["already_imported"], "source": plan.source_name,
        "sha256": plan.source_sha256,
    }], description=f"Reel {plan.bid}")
    return summary
