"""The console's history pages: a batch with its devices and runs, the last drift reports, the audit log."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse

from bindery import audit, runs
from bindery.access import Action, require
from bindery.db import session_scope
from bindery.errors import BinderyError
from bindery.provisioning import devices
from bindery.web import deps, services
from bindery.web.pages import back, logged_in, render, signed_in

router = APIRouter(include_in_schema=False)
PAGE = 50


def batch_path(bid: str) -> str:
    return f"/batches/{quote(bid, safe='')}"


@router.get("/batches/{bid}", response_class=HTMLResponse)
def batch_page(request: Request, bid: str, cloud_api: Annotated[str, Query(max_length=200)] = "",
               status: Annotated[str, Query(max_length=16)] = "",
               after: Annotated[str, Query(max_length=64)] = "") -> Response:
    """Counters per target, the devices (failed first unless filtered) a page at a time, and the runs."""
    who = signed_in(request)
    with session_scope(deps.settings_of(request)) as session:
        counts = devices.target_counts(session=session, actor=who[0], bid=bid)
        page = devices.device_page(session=session, actor=who[0], bid=bid, cloud_api=cloud_api or None,
                                   status=status or None, after=after or None, limit=PAGE, failed_first=True)
        history = runs.list_runs(session=session, actor=who[0], bid=bid, limit=20)
    return render(request, "batch.html", who, bid=bid, counts=counts, devices=page.rows, next_after=page.next_after,
                  cloud_api=cloud_api, state=status, statuses=devices.STATUSES, runs=history,
                  path=batch_path(bid))


@router.post("/batches/{bid}/retry-failed")
def retry_failed(request: Request, bid: str, cloud_api: Annotated[str, Form(max_length=200)] = "",
                 csrf_token: Annotated[str, Form()] = "") -> Response:
    """A Provision Now into one target: a rerun tries exactly the devices not yet provisioned there."""
    actor = logged_in(request, csrf_token)
    try:
        with session_scope(deps.settings_of(request)) as session:
            job = services.start_provision(session, deps.jobs_of(request), actor, bid, cloud_api or None)
    except BinderyError as exc:
        return back("/", error=str(exc))
    return back(batch_path(bid), ok=f"retrying the devices of {bid} not yet in {job.cloud_api}")


@router.get("/reconcile", response_class=HTMLResponse)
def reconcile_page(request: Request) -> Response:
    who = signed_in(request)
    with session_scope(deps.settings_of(request)) as session:
        reports = runs.latest_reports(session=session, actor=who[0])
    return render(request, "reconcile.html", who, reports=reports, level=trend_level)


def trend_level(drifted: int) -> int:
    """A bar's height class: none, a few, tens, hundreds, more (a log scale: one bad night stays readable)."""
    return next((i for i, limit in enumerate((1, 10, 100, 1000)) if drifted < limit), 4)


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
