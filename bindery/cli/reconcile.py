"""`bindery reconcile`: drift between the Product Clouds and the records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from bindery import runs
from bindery.accounts import get_account
from bindery.cli.common import JsonOption, console, print_json, print_table
from bindery.db import session_scope
from bindery.errors import BadInput
from bindery.reconcile import reconcile as run_reconcile
from bindery.settings import get_settings

DRIFT_EXIT_CODE = 3


def reconcile(
    account: Annotated[str | None, typer.Option(help="Only this account's batches.")] = None,
    repair: Annotated[bool, typer.Option(help="Re-provision the missing and record the unrecorded.")] = False,
    report: Annotated[Path | None, typer.Option(help="Write the per-target report as JSON.")] = None,
    last: Annotated[bool, typer.Option("--last", help="Show the last stored report per target; ask nobody.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Compare what each target holds with the records (exit 3 when there is drift)."""
    if last:
        show_last(account, as_json)
        return
    if report is not None and not report.parent.is_dir():
        raise BadInput(f"{report}: folder {report.parent} does not exist")
    drifts = run_reconcile(settings=get_settings(), account=account, fix=repair)
    print_table("Reconciliation", ["account", "BID", "target", "asked", "expected", "present", "missing",
                                   "unrecorded", "disabled", "mismatched", "repaired"],
                [[d.account, d.bid, d.cloud_api, "yes" if d.checked else "records only", d.expected, d.present,
                  len(d.missing), len(d.unrecorded), len(d.disabled), len(d.mismatched),
                  "not repaired" if d.not_repaired else ", ".join(f"{k} {v}" for k, v in d.repaired.items())]
                 for d in drifts])
    for d in drifts:
        if d.not_repaired:
            console().print(f"{d.bid} into {d.cloud_api} not repaired: {d.not_repaired}")
    if report is not None:
        report.write_text(json.dumps([d.as_json() for d in drifts], indent=2), encoding="utf-8")
    drifted = [d for d in drifts if d.has_drift]
    console().print(f"{len(drifts)} targets checked, {len(drifted)} with drift"
                    + (" (repaired)" if repair and drifted else ""))
    if drifted:
        raise typer.Exit(DRIFT_EXIT_CODE)


def show_last(account: str | None, as_json: bool) -> None:
    """The last reconcile report of every target (of one account, or all), with its trend."""
    with session_scope() as session:
        owner = get_account(session=session, name=account) if account is not None else None
        reports = runs.latest_reports(session=session, actor=None, account_id=owner.id if owner else None)
    if as_json:
        print_json(reports)
        return
    print_table("Last reconciliation per target", ["BID", "target", "checked at", "status", "finding", "missing",
                                                    "unrecorded", "disabled", "mismatched", "trend (last 30)"],
                [[r["bid"], r["cloud_api"], r["finished_at"], r["status"], r["message"],
                  *(_first(r, kind) for kind in ("missing", "unrecorded", "disabled", "mismatched")),
                  " ".join(map(str, r["trend"]))] for r in reports])
    if not reports:
        console().print("no reconciliation stored yet: run `bindery reconcile`")


def _first(report: dict[str, object], kind: str, shown: int = 5) -> str:
    ids = list((report.get("findings") or {}).get(kind, []))  # type: ignore[attr-defined]
    return ", ".join(ids[:shown]) + (f" (+{len(ids) - shown})" if len(ids) > shown else "")
