"""Flow `reconcile`: what each Product Cloud holds against the records, with a drift report."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.states import Completed, State

from bindery.tasks import artifacts
from bindery.tasks.origin import flow_origin
from bindery.tasks.reconcile import find_targets, reconcile_target


@flow(name="reconcile", description="Nightly - compare every target's holdings with the records and report drift.")
def reconcile(account: str | None = None, repair: bool = False) -> State[Any]:
    """Compare what every target holds with the records and report drift.

    Args:
        account: Only this account's batches; empty for all accounts.
        repair: Re-provision the missing devices and record the unrecorded ones.
    """
    targets = find_targets(account)
    origin = flow_origin()
    checked = [future.result() for future in
               [reconcile_target.submit(name, bid, api, repair, origin) for name, bid, api in targets]]
    drifts = [drift for drift in checked if drift is not None]  # None: the batch changed hands meanwhile
    by_account: dict[str, list[Any]] = {}
    for drift in drifts:
        by_account.setdefault(drift.account, []).append(drift)
    for name, items in by_account.items():
        rows = [{"BID": d.bid, "target": d.cloud_api, "asked": d.checked, "expected": d.expected,
                 "present": d.present, "missing": len(d.missing), "unrecorded": len(d.unrecorded),
                 "disabled": len(d.disabled), "mismatched": len(d.mismatched)} for d in items]
        artifacts.publish_table("reconcile", name, rows, description=f"Reconciliation of {name}")
        lines = [f"# Reconciliation of {name}", ""]
        for d in items:
            state = "drift" if d.has_drift else ("records only" if not d.checked else "in sync")
            lines.append(f"- **{d.bid} → {d.cloud_api}**: {state}; expected {d.expected}, present {d.present}"
                         + "".join(f"; {k} {', '.join(v[:20])}" for k, v in (
                             ("missing", d.missing), ("unrecorded", d.unrecorded), ("disabled", d.disabled),
                             ("mismatched", d.mismatched)) if v)
                         + (f"; not repaired: {d.not_repaired}" if d.not_repaired else ""))
        create_markdown_artifact(key=artifacts.artifact_key("reconcile-summary", name), markdown="\n".join(lines))
    drifted = sum(d.has_drift for d in drifts)
    return Completed(message=f"{len(drifts)} targets checked, {drifted} with drift",
                     data={"targets": len(drifts), "drift": drifted, "report": [d.as_json() for d in drifts]})
