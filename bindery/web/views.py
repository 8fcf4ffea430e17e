"""The console's history pages: the last drift reports and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from bindery import audit, runs
from bindery.access import Action, require
from bindery.db import session_scope
from bindery.web import deps
from bindery.web.pages import render, signed_in

router = APIRouter(include_in_schema=False)
PAGE = 50


@router.get("/reconcile", response_class=HTMLResponse)
def reconcile_page(request: Request) -> Response:
    who = signed_in(request)
    with session_scope(deps.settings_of(request)) as session:
        reports = runs.latest_reports(session=session, actor=who[0])
    return render(request, "reconcile.html", who, reports=reports)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, since: Annotated[str, Query(max_length=40)] = "",
               user: Annotated[str, Query(max_length=320)] = "", bid: Annotated[str, Query(max_length=200)] = "",
               before: Annotated[int | None, Query(ge=1)] = None) -> Response:
    who = signed_in(request)
    require(who[0], Action.READ_AUDIT)
    with session_scope(deps.settings_of(request)) as session:
        events = audit.read(session=session, actor=who[0], since=audit.parse_since(since), user=user or None,
                            bid=bid or None, limit=PAGE + 1, before=before)
    older = events[PAGE - 1].id if len(events) > PAGE else None
    return render(request, "audit.html", who, events=events[:PAGE], since=since, user=user, bid=bid, older=older)
