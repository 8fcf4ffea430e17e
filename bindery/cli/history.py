"""`bindery runs` and `bindery audit`: what ran and who changed what."""

from __future__ import annotations

from typing import Annotated

import typer

from bindery import audit as audit_log
from bindery import runs as run_history
from bindery.accounts import get_account
from bindery.cli.common import JsonOption, UserOption, acting, print_json, print_table
from bindery.db import session_scope

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
    print_table("Runs", ["id", "kind", "BID", "target", "status", "started", "by", "via", "outcome", "flow run"],
                [[r.id, r.kind, r.bid, r.cloud_api, r.status, f"{r.started_at:%Y-%m-%d %H:%M:%S}", r.started_by,
                  r.started_via + (f" (restarts #{r.replaces_run_id})" if r.replaces_run_id else ""), r.message or "",
                  r.flow_run_url or r.flow_run_id or ""] for r in found])


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
    if as_json:
        print_json([event.model_dump(mode="json") for event in events])
        return
    print_table("Audit log", ["at", "who", "action", "subject", "detail"],
                [[f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.action, e.subject, e.detail] for e in events])
