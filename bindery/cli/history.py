"""`bindery runs` and `bindery audit`: what ran and who changed what."""

from __future__ import annotations

from typing import Annotated

import typer

from bindery import audit as audit_log
from bindery import runs as run_history
from bindery.accounts import get_account
from bindery.cli.common import JsonOption, UserOption, acting, console, iso_time, print_json, print_table
from bindery.db import session_scope
from bindery.settings import get_settings

LimitOption = Annotated[int, typer.Option(help="At most this many, newest first.")]


def runs(bid: Annotated[str | None, typer.Argument(help="Only this batch's runs.")] = None,
         kind: Annotated[str | None, typer.Option(help="provision, deprovision or reconcile.")] = None,
         limit: LimitOption = 50, as_json: JsonOption = False, user: UserOption = None) -> None:
    """The account's runs: who or what started them, the target, counts and outcome (members too)."""
    with session_scope() as session:
        found = run_history.list_runs(session=session, actor=acting(session, user), bid=bid, kind=kind, limit=limit)
    if as_json:
        print_json([run.model_dump(mode="json") for run in found])
        return
    ui = get_settings().prefect_ui
    print_table("Runs", ["id", "kind", "BID", "target", "status", "started", "by", "via", "outcome", "flow run"],
                [[r.id, r.kind, r.bid, r.cloud_api, r.status, iso_time(r.started_at), r.started_by,
                  r.started_via + (f" (restarts #{r.replaces_run_id})" if r.replaces_run_id else ""), r.message or "",
                  r.flow_run_id or ""] for r in found], whole=("started", "via", "flow run"))
    links = [(r.id, flow_run_link(r.flow_run_id, r.flow_run_url, ui)) for r in found if r.flow_run_id]
    if links and not ui and not any(link for _, link in links):
        console().print("flow runs link to the Prefect UI when PREFECT_UI_URL or PREFECT_API_URL is set")
    for run_id, link in links:
        if link:
            console().print(f"run {run_id} in the Prefect UI: {link}")


def flow_run_link(flow_run_id: str | None, url: str | None, ui: str | None) -> str:
    """A flow run's page in the Prefect UI: the link kept when the run started, else one made from the UI's
    address when it is known now."""
    if not flow_run_id:
        return ""
    return url or (f"{ui.rstrip('/')}/runs/flow-run/{flow_run_id}" if ui else "")


def audit(since: Annotated[str | None, typer.Option(help="30m, 24h, 7d or an ISO date/time.")] = None,
          user: Annotated[str | None, typer.Option("--user", help="Only what this user did.")] = None,
          bid: Annotated[str | None, typer.Option(help="Only events about this BID.")] = None,
          account: Annotated[str | None, typer.Option(help="Only this account's events.")] = None,
          limit: LimitOption = 100, as_json: JsonOption = False) -> None:
    """The audit log, newest first (the operator's view: every account; admins read theirs in the console
    and at GET /api/audit)."""
    with session_scope() as session:
        account_id = get_account(session=session, name=account).id if account is not None else None
        events = audit_log.read(session=session, actor=None, since=audit_log.parse_since(since), user=user,
                                bid=bid, limit=limit, account_id=account_id)
        accounts = audit_log.account_names(session=session, events=events)
    if as_json:
        print_json([{**event.model_dump(mode="json"), "account": accounts.get(event.id)} for event in events])
        return
    print_table("Audit log", ["at", "account", "who", "what"],
                [[iso_time(e.at), accounts.get(e.id, "—"), e.actor, audit_log.describe(e)] for e in events])
