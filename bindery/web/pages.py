"""The console's pages: server-rendered, no script; forms post back with a CSRF token and redirect
with the outcome (or the CLI's error message) to show."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from bindery import binding
from bindery.access import Action, Actor, may
from bindery.clouds import config
from bindery.db import session_scope
from bindery.errors import BinderyError, DatabaseUnavailable, NotFound, PermissionDenied, page_words
from bindery.provisioning import service
from bindery.web import deps, display, services
from bindery.web.credentials import (
    LoginLimits,
    NotAuthenticated,
    check_login,
    claim_login_attempt,
    end_session,
    record_login_failure,
    release_login_attempt,
    session_actor,
    start_session,
)

router = APIRouter(include_in_schema=False)
COOKIE, LOGIN_COOKIE, FLASH_COOKIE = "bindery_session", "bindery_login", "bindery_flash"
FLASH_LIMIT = 300
PREFILL_LIMIT = 64



def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=Path(__file__).parent / "templates")
    found.env.filters.update(display.FILTERS)
    found.env.globals.update(display.GLOBALS)
    return found


def batch_path(bid: str) -> str:
    return f"/batches/{quote(bid, safe='')}"


def current(request: Request) -> tuple[Actor, str] | None:
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    try:
        with session_scope(deps.settings_of(request)) as session:
            return session_actor(session=session, cookie=cookie)
    except NotAuthenticated:
        return None


def signed_in(request: Request) -> tuple[Actor, str]:
    """The session's user and CSRF token; without one, NotAuthenticated (shown as a redirect to log in)."""
    who = current(request)
    if who is None:
        raise NotAuthenticated("not logged in or the session expired")
    return who


def to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def check_csrf(expected: str, given: str) -> None:
    if not given or not secrets.compare_digest(expected, given):
        raise PermissionDenied("the form expired or did not come from this console (CSRF check failed): reload it")


def render(request: Request, name: str, who: tuple[Actor, str] | None, status: int = 200, **context: Any) -> Response:
    """A page; the outcome of the last form (a flash the server set, never text from the URL) is shown once."""
    actor = who[0] if who else None
    flash = read_flash(request)
    values = {"actor": actor, "csrf": who[1] if who else "",
              "admin": actor is not None and may(actor, Action.PROVISION),
              "ok": flash.get("ok"), "error": flash.get("error"), "kept": flash.get("kept", {}), **context}
    response = templates().TemplateResponse(request, name, values, status_code=status)
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE)
    return response


def read_flash(request: Request) -> dict[str, Any]:
    """The last form's outcome: "ok" and "error" texts, and "kept", the form's values to show again."""
    try:
        found = json.loads(unquote(request.cookies.get(FLASH_COOKIE, "") or "{}"))
    except ValueError:
        return {}
    if not isinstance(found, dict):
        return {}
    flash: dict[str, Any] = {k: str(v)[:FLASH_LIMIT] for k, v in found.items() if k in ("ok", "error")}
    kept = found.get("kept")
    if isinstance(kept, dict):
        flash["kept"] = {str(k)[:PREFILL_LIMIT]: str(v)[:FLASH_LIMIT] for k, v in kept.items()}
    return flash


def back(path: str, *, ok: str | None = None, error: str | None = None,
         kept: dict[str, str] | None = None) -> RedirectResponse:
    """Redirect after a form; the outcome (and the values to show again in the form, ``kept``: never a
    secret) travels in a short-lived cookie the server sets, so a link can neither forge the console's
    messages nor make the Location header long."""
    response = RedirectResponse(path, status_code=303)
    outcome: dict[str, Any] = {k: v[:FLASH_LIMIT] for k, v in (("ok", ok), ("error", error)) if v}
    if kept:
        outcome["kept"] = {k: v[:FLASH_LIMIT] for k, v in kept.items()}
    response.set_cookie(FLASH_COOKIE, quote(json.dumps(outcome)), max_age=60, httponly=True, samesite="strict")
    return response


def error_page(request: Request, exc: BinderyError, status: int) -> Response:
    if isinstance(exc, NotAuthenticated):
        return to_login(request)
    try:
        who = None if isinstance(exc, DatabaseUnavailable) else current(request)
    except DatabaseUnavailable:
        who = None
    return render(request, "error.html", who, status=status, code=status, message=page_words(exc)[:FLASH_LIMIT])


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of this site, or "/". Browsers drop tabs and newlines from a URL
    and read a backslash as a slash, so any of those (or another control character) is refused too."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return "/" if any(ord(c) < 0x21 or ord(c) == 0x7f for c in target) else target


def bid_to_bind(target: str) -> str | None:
    """The BID of a bind link (typed, or a reel's QR code: ``/bind?bid=D001``, ``/cloud-id?groupId=D001``)."""
    parts = urlsplit(target)
    if parts.path not in ("/bind", "/cloud-id"):
        return None
    query = parse_qs(parts.query)
    found = next((query[key][0].strip() for key in binding.QR_KEYS if query.get(key)), "")
    return found[:PREFILL_LIMIT] or None


def login_context(next_path: str) -> dict[str, Any]:
    return {"next": next_path, "binding": bid_to_bind(next_path),
            "accepting": urlsplit(next_path).path == "/transfers/accept"}


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", None, login_csrf=token, **login_context(safe_next(next)))
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="lax", secure=request.url.scheme == "https",
                        max_age=3600)
    return response


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, email: Annotated[str, Form(max_length=320)],
          password: Annotated[str, Form(max_length=1000)], csrf_token: Annotated[str, Form()] = "",
          next: Annotated[str, Form(max_length=2000)] = "/") -> Response:
    check_csrf(request.cookies.get(LOGIN_COOKIE, ""), csrf_token)
    settings = deps.settings_of(request)
    limits, client = LoginLimits.of(settings), request.client.host if request.client else None
    try:
        with session_scope(settings) as session:  # committed before the password is checked
            claim_login_attempt(session=session, email=email, client=client, limits=limits)
        with session_scope(settings) as session:
            actor = check_login(session=session, email=email, password=password)
            release_login_attempt(session=session, email=email, client=client, limits=limits)
            cookie, _csrf = start_session(session=session, actor=actor)
    except BinderyError as exc:
        if isinstance(exc, NotAuthenticated):  # audited in its own transaction
            with session_scope(settings) as session:
                record_login_failure(session=session, email=email)
        return render(request, "login.html", None, status=api_status(exc), login_csrf=csrf_token, error=page_words(exc),
                      email=email, **login_context(safe_next(next)))
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(COOKIE, cookie, httponly=True, samesite="lax", secure=request.url.scheme == "https",
                        max_age=12 * 3600)
    response.delete_cookie(LOGIN_COOKIE)
    return response


def api_status(exc: BinderyError) -> int:
    from bindery.web.app import status_of

    return status_of(exc)


@router.post("/logout")
def logout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    who = current(request)
    if who is not None:
        check_csrf(who[1], csrf_token)
        with session_scope(deps.settings_of(request)) as session:
            end_session(session=session, cookie=request.cookies.get(COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("/bind", response_class=HTMLResponse)
def bind_page(request: Request, bid: str = "") -> Response:
    who = signed_in(request)
    return render(request, "bind.html", who, bid=bid[:PREFILL_LIMIT], apis=_apis(request, who[0]))


@router.get("/cloud-id", response_class=HTMLResponse)
def cloud_id_page(request: Request, groupId: str = "") -> Response:
    who = signed_in(request)
    return render(request, "bind.html", who, bid=groupId[:PREFILL_LIMIT], apis=_apis(request, who[0]))


def _apis(request: Request, actor: Actor) -> list[str]:
    if not may(actor, Action.PICK_CLOUD_API):
        return []
    with session_scope(deps.settings_of(request)) as session:
        return [a.name for a in config.list_cloud_apis(session=session, actor=actor)]


def logged_in(request: Request, csrf_token: str) -> Actor:
    """The user behind a form post, after its CSRF token was checked."""
    who = signed_in(request)
    check_csrf(who[1], csrf_token)
    return who[0]


@router.post("/bind", response_class=HTMLResponse)
def bind(request: Request, bid: Annotated[str, Form(max_length=200)] = "",
         cloud_api: Annotated[str, Form(max_length=200)] = "", csrf_token: Annotated[str, Form()] = "") -> Response:
    actor = logged_in(request, csrf_token)
    try:
        done = services.bind_batch(deps.settings_of(request), deps.jobs_of(request), actor, bid.strip(), None,
                                   cloud_api or None)
    except NotFound as exc:
        return back("/bind", kept={"bid": bid}, error=f"{exc}: check the BID against the reel's label (or scan "
                    "its QR code again); if it is right, ask an admin to import the reel's file first")
    except BinderyError as exc:
        return back("/bind", kept={"bid": bid}, error=page_words(exc))
    message = (f"batch {done['bid']} was already bound to your account" if done["already_bound"]
               else f"bound batch {done['bid']} ({done['devices']} devices) to {actor.account_name}")
    if done["job"]:
        message += f"; provisioning into {done['job']['cloud_api']} started"
    return back("/bind", ok=message)


@router.post("/provisioning/auto-provision")
def auto_provision(request: Request, enabled: Annotated[str, Form()] = "", cloud_api: Annotated[str, Form()] = "",
                   csrf_token: Annotated[str, Form()] = "") -> Response:
    actor = logged_in(request, csrf_token)
    try:
        with session_scope(deps.settings_of(request)) as session:
            now = service.set_auto_provision(session=session, actor=actor, enabled=enabled == "on",
                                             cloud_api=cloud_api or None)
    except BinderyError as exc:
        return back("/provisioning", error=page_words(exc))
    state = f"on, into {now.cloud_api}" if now.enabled else "off"
    return back("/provisioning", ok=f"automatic provisioning on bind is {state}")
