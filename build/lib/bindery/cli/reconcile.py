"""`bindery reconcile`: drift between the Product Clouds and the records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from bindery.cli.common import console, print_table
from bindery.errors import BadInput
from bindery.reconcile import reconcile as run_reconcile
from bindery.settings import get_settings

DRIFT_EXIT_CODE = 3


def reconcile(
    account: Annotated[str | None, typer.Option(help="Only this account's batches.")] = None,
    repair: Annotated[bool, typer.Option(help="Re-provision the missing and record the unrecorded.")] = False,
    report: Annotated[Path | None, typer.Option(help="Write the per-target report as JSON.")] = None,
) -> None:
    """Compare what each target holds with the records (exit 3 when there is drift)."""
    if report is not None and not report.parent.is_dir():
        raise BadInput(f"{report}: folder {report.parent} does not exist")
    drifts = run_reconcile(settings=get_settings(), account=account, fix=repair)
    print_table("Reconciliation", ["account", "BID", "target", "asked", "expected", "present", "missing",
                                   "unrecorded", "disabled", "mismatched", "repaired"],
                [[d.account, d.bid, d.cloud_api, "yes" if d.checked else "records only", d.expected, d.present,
                  len(d.missing), len(d.unrecorded), len(d.disabled), len(d.mismatched),
                  ", ".join(f"{k} {v}" for k, v in d.repaired.items())] for d in drifts])
    if report is not None:
        report.write_text(json.dumps([d.as_json() for d in drifts], indent=2), encoding="utf-8")
    drifted = [d for d in drifts if d.has_drift]
    console().print(f"{len(drifts)} targets checked, {len(drifted)} with drift"
                    + (" (repaired)" if repair and drifted else ""))
    if drifted:
        raise typer.Exit(DRIFT_EXIT_CODE)
