"""The console's batch pages: the list of the account's batches and the batch page (the hub: its summary,
per-target counts, what is running now, the actions an admin may take, its devices and its runs).

Both pages are complete without script. With it, htmx (vendored, served from /static) polls a fragment
of each (``/live/...``) and swaps it in: every 2 s while a run is open, every 10 s otherwise, so runs
started anywhere (CLI, ERP, a schedule) show up and their progress moves without a reload."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from sqlmodel import Session

from bindery import binding, runs, transfer
from bindery.access import Action, Actor, may
from bindery.clouds import config
from bindery.clouds.kinds import spec_of
from bindery.db import session_scope
from bindery.errors import BinderyError, NotFound, page_words
from bindery.models.transfers import ACCEPTED, EXPIRED, OFFERED
from bindery.provisioning import devices, progress, service
from bindery.web import deps, display, services
from bindery.web.credentials import NotAuthenticated
from bindery.web.pages import back, batch_path, logged_in, render, signed_in, templates

router = APIRouter(include_in_schema=False)
PAGE = 50
RECENT = 5  # offers made shown on the batch list
BUSY_POLL, IDLE_POLL = 2, 5  # seconds between a page's fragment requests


def prefect_ui(request: Request) -> str | None:
    """The Prefect UI's address when the settings know it (PREFECT_UI_URL, else the API's host); a flow
    run's own link, kept on its row when it started, comes first."""
    return deps.settings_of(request).prefect_ui


def fragment(request: Request, name: str, who: tuple[Actor, str], **context: Any) -> Response:
    """A part of a page for its poll: no flash is read or cleared, nothing else of the page is sent."""
    actor = who[0]
    return templates().TemplateResponse(request, name, {
        "actor": actor, "csrf": who[1], "admin": may(actor, Action.PROVISION), **context})


def session_ended() -> Response:
    """A poll after the session ended: say so in place and stop polling (htmx stops on 286)."""
    return HTMLResponse('<p class="error" id="live" role="alert">Your session ended: '
                        '<a href="/login">log in again</a>.</p>', status_code=286)


def _apis(session: Session, actor: Actor) -> list[str]:
    if not may(actor, Action.PROVISION):
        return []
    return [a.name for a in config.list_cloud_apis(session=session, actor=actor)]


def offers_for(session: Session, actor: Actor) -> dict[str, Any]:
    """For the batch list: open offers to the actor's account, its own open offers by BID, and its latest
    offers made (any state), so a giver sees an offer accepted, withdrawn or expired."""
    rows = transfer.list_transfers(session=session, actor=actor)
    made = [t for t in rows if t["direction"] == "made"]
    return {"received": [t for t in rows if t["direction"] == "received" and t["state"] == OFFERED],
            "made": {t["bid"]: t for t in made if t["state"] == OFFERED}, "made_lately": made[:RECENT]}


# ---- the batch list -------------------------------------------------------------------------------------

def list_context(request: Request, actor: Actor, q: str) -> dict[str, Any]:
    with session_scope(deps.settings_of(request)) as session:
        rows = binding.account_batches(session=session, actor=actor)
        open_runs = progress.running(session=session, actor=actor)
        flagged = progress.last_failed(session=session, actor=actor)
        offers = offers_for(session, actor)
    shown = [row for row in rows if q.strip().lower() in row["bid"].lower()] if q.strip() else rows
    working: dict[str, list[progress.RunProgress]] = {}
    for run in open_runs:
        working.setdefault(run.run.bid, []).append(run)
    return {"batches": shown, "all_batches": len(rows), "q": q, "working": working, "flagged": flagged,
            **offers, "may_transfer": may(actor, Action.TRANSFER),
            "poll": BUSY_POLL if open_runs or starting(request, actor) else IDLE_POLL,
            "live_url": "/live/batches?" + urlencode({"q": q})}


@router.get("/", response_class=HTMLResponse)
def batches_page(request: Request, q: Annotated[str, Query(max_length=200)] = "") -> Response:
    who = signed_in(request)
    context = list_context(request, who[0], q)
    return render(request, "batches.html", who, refresh=bool(context["working"]), **context)


@router.get("/live/batches", response_class=HTMLResponse)
def batches_live(request: Request, q: Annotated[str, Query(max_length=200)] = "") -> Response:
    try:
        who = signed_in(request)
    except NotAuthenticated:
        return session_ended()
    return fragment(request, "_batches_table.html", who, **list_context(request, who[0], q))


# ---- the batch page --------------------------------------------------------------------------------------

def batch_context(request: Request, actor: Actor, bid: str, *, cloud_api: str, status: str, q: str, start: int,
                  watch: list[int]) -> dict[str, Any]:
    with session_scope(deps.settings_of(request)) as session:
        batch = binding.batch_view(session=session, actor=actor, bid=bid)
        counts = devices.target_counts(session=session, actor=actor, bid=bid)
        window = devices.device_window(session=session, actor=actor, bid=bid, cloud_api=cloud_api or None,
                                       status=status or None, search=q or None, start=start, limit=PAGE)
        open_runs = progress.running(session=session, actor=actor, bid=bid)
        ended = progress.ended(session=session, actor=actor, bid=bid, run_ids=watch)
        last = progress.last_runs(session=session, actor=actor, bid=bid)
        history = runs.list_runs(session=session, actor=actor, bid=bid, limit=20)
        apis = _apis(session, actor)
        offer = transfer.open_offer_of(session=session, actor=actor, bid=bid)
        lately = transfer.last_made(session=session, actor=actor, bid=bid)
    path = batch_path(bid)
    filters = {"cloud_api": cloud_api, "status": status, "q": q}
    kept = {k: v for k, v in filters.items() if v}
    watching = [r.run.id for r in open_runs] + [r.id for r in ended]
    return {
        "bid": batch["bid"], "batch": batch, "counts": counts, "window": window, "devices": window.rows,
        "running": open_runs, "ended": ended, "last": last, "runs": history, "apis": apis,
        "provisioned_apis": [c["cloud_api"] for c in counts if c["provisioned"]],
        "cloud_api": cloud_api, "state": status, "q": q, "statuses": devices.STATUSES, "path": path,
        "filtered": bool(kept), "page_query": urlencode({**kept, **({"start": start} if start else {})}),
        "previous": f"{path}?{urlencode({**kept, 'start': max(0, start - PAGE)})}" if start > 0 else None,
        "next": f"{path}?{urlencode({**kept, 'start': start + PAGE})}" if start + PAGE < window.total else None,
        "poll": BUSY_POLL if open_runs or starting(request, actor, bid) else IDLE_POLL,
        "live_url": f"{path}/live?" + urlencode({**kept, "start": start, "watch": ",".join(map(str, watching))}),
        # the device and run lists are sent with a poll only while they can change
        "lists_change": bool(open_runs or ended), "prefect_ui": prefect_ui(request),
        "offer": offer, "expired": lately if lately and lately["state"] == EXPIRED else None,
        "may_transfer": may(actor, Action.TRANSFER), "custody": batch["custody"],
        "came": batch["custody"][-1]["via"] if batch["custody"] else "bind",
    }


def starting(request: Request, actor: Actor, bid: str | None = None) -> bool:
    """A job this web process started that has not written its run's row yet: poll as if it ran."""
    return any(job.account_id == actor.account_id and job.state in ("RUNNING", "SCHEDULED", "PENDING")
               and (bid is None or job.bid == bid) for job in list(deps.jobs_of(request).jobs.values()))


def parse_watch(watch: str) -> list[int]:
    return [int(part) for part in watch.split(",")[:20] if part.isdigit()]


@router.get("/batches/{bid}", response_class=HTMLResponse)
def batch_page(request: Request, bid: str, cloud_api: Annotated[str, Query(max_length=200)] = "",
               status: Annotated[str, Query(max_length=16)] = "", q: Annotated[str, Query(max_length=128)] = "",
               start: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> Response:
    """The batch's hub: summary, counts per target with the last run's outcome, work in progress, actions,
    its devices in id order (searchable, a page at a time with position) and its runs."""
    who = signed_in(request)
    try:
        context = batch_context(request, who[0], bid, cloud_api=cloud_api, status=status, q=q, start=start,
                                watch=[])
    except NotFound as exc:
        raise handed_on(request, who[0], bid) or exc from None
    return render(request, "batch.html", who, refresh=bool(context["running"]), **context)


def handed_on(request: Request, actor: Actor, bid: str) -> NotFound | None:
    """An "unknown BID" told the way a giver needs it when its own account transferred the batch away
    (what it did, from its own offer: nothing of the receiver's)."""
    with session_scope(deps.settings_of(request)) as session:
        last = transfer.last_made(session=session, actor=actor, bid=bid)
    if last is None or last["state"] != ACCEPTED:
        return None
    at = display.moment(last["closed_at"])
    when = at.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z") if at else ""
    return NotFound(f"unknown BID {bid}: your account transferred it to {last['to_account']} "
                    f"({last['closed_by']} accepted it on {when}); your offers are on the batch list")


@router.get("/batches/{bid}/live", response_class=HTMLResponse)
def batch_live(request: Request, bid: str, cloud_api: Annotated[str, Query(max_length=200)] = "",
               status: Annotated[str, Query(max_length=16)] = "", q: Annotated[str, Query(max_length=128)] = "",
               start: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
               watch: Annotated[str, Query(max_length=400)] = "") -> Response:
    """The batch page's live part: what runs now and how far it got, what just ended, the counts; with
    the device and run lists too (swapped out of band) while they change."""
    try:
        who = signed_in(request)
    except NotAuthenticated:
        return session_ended()
    try:
        context = batch_context(request, who[0], bid, cloud_api=cloud_api, status=status, q=q, start=start,
                                watch=parse_watch(watch))
    except NotFound as exc:  # say it in place and stop polling (htmx stops on 286)
        said = handed_on(request, who[0], bid) or exc
        return HTMLResponse(Markup('<p class="error" id="live" role="alert">{}: <a href="/">back to the batch '
                                   "list</a>.</p>").format(str(said)), status_code=286)
    return fragment(request, "_batch_live.html", who, oob=context["lists_change"], **context)


def origin_path(bid: str, back_to: str) -> str:
    return batch_path(bid) if back_to == "batch" else "/"


@router.post("/batches/{bid}/provision")
def provision(request: Request, bid: str, cloud_api: Annotated[str, Form(max_length=200)] = "",
              back_to: Annotated[str, Form(max_length=8)] = "", csrf_token: Annotated[str, Form()] = "") -> Response:
    """Provision Now: into the chosen API (or the batch's target); says so when there is nothing to do."""
    actor = logged_in(request, csrf_token)
    where = origin_path(bid, back_to)
    try:
        with session_scope(deps.settings_of(request)) as session:
            left = progress.remaining(session=session, actor=actor, bid=bid, cloud_api=cloud_api or None)
            if left.nothing_to_do:
                return back(where, ok=f"nothing to do: all {left.devices:,} devices of {bid} are already "
                                      f"provisioned into {left.cloud_api}")
            services.start_provision(session, deps.jobs_of(request), actor, bid, left.cloud_api)
    except BinderyError as exc:
        return back(where, error=page_words(exc))
    return back(where, ok=f"provisioning {bid} into {left.cloud_api} started: "
                          f"{left.devices - left.provisioned:,} of {left.devices:,} devices to do")


@router.post("/batches/{bid}/retry-failed")
def retry_failed(request: Request, bid: str, cloud_api: Annotated[str, Form(max_length=200)] = "",
                 csrf_token: Annotated[str, Form()] = "") -> Response:
    """A Provision Now into one target: a rerun tries exactly the devices not yet provisioned there."""
    actor = logged_in(request, csrf_token)
    try:
        with session_scope(deps.settings_of(request)) as session:
            job = services.start_provision(session, deps.jobs_of(request), actor, bid, cloud_api or None)
    except BinderyError as exc:
        return back(batch_path(bid), error=page_words(exc))
    return back(batch_path(bid), ok=f"retrying the devices of {bid} not yet in {job.cloud_api}")


@router.post("/batches/{bid}/target")
def set_target(request: Request, bid: str, cloud_api: Annotated[str, Form(max_length=200)] = "",
               back_to: Annotated[str, Form(max_length=8)] = "", csrf_token: Annotated[str, Form()] = "") -> Response:
    actor = logged_in(request, csrf_token)
    where = origin_path(bid, back_to)
    try:
        with session_scope(deps.settings_of(request)) as session:
            service.set_target(session=session, actor=actor, bid=bid, cloud_api=cloud_api)
    except BinderyError as exc:
        return back(where, error=page_words(exc))
    return back(where, ok=f"target of {bid} is now {cloud_api} (nothing provisioned)")


@router.get("/batches/{bid}/deprovision", response_class=HTMLResponse)
def deprovision_page(request: Request, bid: str, cloud_api: Annotated[str, Query(max_length=200)] = "") -> Response:
    """Deprovision asks first: what will be removed from where, and what cannot be undone."""
    who = signed_in(request)
    if not cloud_api:
        return back(batch_path(bid), error="choose the Product Cloud API to remove the devices from")
    with session_scope(deps.settings_of(request)) as session:
        counts = {c["cloud_api"]: c for c in devices.target_counts(session=session, actor=who[0], bid=bid)}
        target = config.get_cloud_api(session=session, actor=who[0], name=cloud_api, action=Action.PROVISION)
        interop = not spec_of(target.kind).removal.supported
    provisioned = counts.get(target.name, {}).get("provisioned", 0)
    return render(request, "deprovision.html", who, bid=bid, path=batch_path(bid), cloud_api=target.name,
                  kind=target.kind, provisioned=provisioned, interop=interop)


@router.post("/batches/{bid}/deprovision")
def deprovision(request: Request, bid: str, cloud_api: Annotated[str, Form(max_length=200)] = "",
                forget: Annotated[str, Form(max_length=4)] = "", confirm: Annotated[str, Form(max_length=200)] = "",
                csrf_token: Annotated[str, Form()] = "") -> Response:
    actor = logged_in(request, csrf_token)
    if confirm.strip() != bid:
        return back(f"{batch_path(bid)}/deprovision?{urlencode({'cloud_api': cloud_api})}",
                    error=f"Type the BID {bid} to confirm: nothing was removed")
    try:
        with session_scope(deps.settings_of(request)) as session:
            job = services.start_deprovision(session, deps.jobs_of(request), actor, bid, cloud_api, forget == "on")
    except BinderyError as exc:
        return back(batch_path(bid), error=page_words(exc))
    return back(batch_path(bid), ok=f"removing the devices of {bid} from {job.cloud_api} started")


@router.get("/batches/{bid}/manifest.csv")
def manifest(request: Request, bid: str) -> Response:
    who = signed_in(request)
    settings = deps.settings_of(request)
    with session_scope(settings) as session:
        return services.manifest_file(session, settings, who[0], bid)
