"""JSON endpoints of the history: runs, the last drift reports and the audit log (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from bindery import audit, runs
from bindery.models.audit import AuditEventPublic
from bindery.models.runs import ReconcileReportPublic, RunPublic
from bindery.web.deps import ActorDep, SessionDep
from bindery.web.schemas import ERRORS

router = APIRouter(prefix="/api", tags=["history"], responses=ERRORS)


@router.get("/runs", summary="Your account's provisioning, deprovisioning and reconcile runs, newest first")
def list_runs(session: SessionDep, actor: ActorDep, bid: Annotated[str | None, Query(max_length=200)] = None,
              kind: Annotated[str | None, Query(max_length=16)] = None,
              limit: Annotated[int, Query(ge=1, le=runs.MAX_RUNS)] = 50,
              before: Annotated[int | None, Query(ge=1, description="a run id: the page before it")] = None,
              ) -> list[RunPublic]:
    found = runs.list_runs(session=session, actor=actor, bid=bid, kind=kind, limit=limit, before=before)
    return found


@router.get("/reconcile/latest", summary="The last reconcile report of every batch and target, with its trend")
def latest_reconcile(session: SessionDep, actor: ActorDep) -> list[ReconcileReportPublic]:
    reports = runs.latest_reports(session=session, actor=actor)
    return [ReconcileReportPublic.model_validate(report) for report in reports]


@router.get("/audit", summary="Your account's audit log, newest first (admins)")
def read_audit(session: SessionDep, actor: ActorDep, since: Annotated[str | None, Query(max_length=40)] = None,
               user: Annotated[str | None, Query(max_length=320)] = None,
               bid: Annotated[str | None, Query(max_length=200)] = None,
               limit: Annotated[int, Query(ge=1, le=audit.MAX_EVENTS)] = 100,
               before: Annotated[int | None, Query(ge=1, description="an event id: the page before it")] = None,
               ) -> list[AuditEventPublic]:
    events = audit.read(session=session, actor=actor, since=audit.parse_since(since), user=user, bid=bid,
                        limit=limit, before=before)
    return events
