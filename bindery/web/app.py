"""The FastAPI application of `bindery web`: security headers, errors mapped like the CLI's, the JSON
API under /api (Bearer tokens) and the server-rendered console (browser sessions)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bindery.db import is_unavailable, unavailable
from bindery.errors import (
    AlreadyExists,
    BadInput,
    BinderyError,
    DatabaseUnavailable,
    FieldError,
    NotFound,
    PermissionDenied,
    TooManyAttempts,
)
from bindery.provisioning.lease import Busy
from bindery.settings import Settings, get_settings
from bindery.web.credentials import NotAuthenticated
from bindery.web.jobs import Jobs

HERE = Path(__file__).parent
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
STATUS: list[tuple[type[BinderyError], int]] = [
    (NotAuthenticated, 401), (TooManyAttempts, 429), (PermissionDenied, 403), (NotFound, 404),
    (AlreadyExists, 409), (Busy, 409), (BadInput, 422), (DatabaseUnavailable, 503), (BinderyError, 409)]


SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                    "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}
log = logging.getLogger("bindery.web")


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413: by Content-Length before anything is read, or,
    for a streamed body, as soon as it passes the limit (the app then sees the client go away)."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    def _too_large(self) -> Response:
        return JSONResponse({"detail": f"request body larger than {self.limit} bytes"}, status_code=413,
                            headers=SECURITY_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.limit:
            await self._too_large()(scope, receive, send)
            return
        seen, overflow, started = 0, False, False

        async def limited() -> Message:
            nonlocal seen, overflow
            if overflow:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    overflow = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if overflow:
                return  # the app's answer to a "disconnect" is replaced by ours
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, guarded)
        except Exception:
            if not overflow:
                raise
        if overflow and not started:
            await self._too_large()(scope, receive, send)


def validation_detail(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Where and what, never the input: it may be unencodable (NaN, 1e999) or large."""
    return [{"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg", "invalid")),
             "type": str(error.get("type", "value_error"))} for error in exc.errors()]


# A rule's FieldError names the CLI's flag (``--to``); the API names the request's field (``to_account``).
BODY_FIELDS = {"to": "to_account"}


def body_field(field: str) -> str:
    return BODY_FIELDS.get(field, field)


def in_body_words(exc: BinderyError) -> str:
    """Every /api answer's detail: a field error names the body's fields (also those its problem mentions)
    and gives the API's own fix, never the CLI's."""
    if isinstance(exc, FieldError):
        return exc.said(body_field(exc.field), exc.api_fix, name_of=body_field)
    return exc.api_text or str(exc)


def status_of(error: BinderyError) -> int:
    """The HTTP status for an error of the rules: the CLI's exit codes, said in HTTP."""
    return next(code for kind, code in STATUS if isinstance(error, kind))


def create_app(settings: Settings | None = None) -> FastAPI:
    from bindery.web import api, batches, cloud_pages, history, pages, transfer_pages, views

    settings = settings or get_settings()
    app = FastAPI(title="Bindery", version="1",
                  description="Bind reels to accounts and provision their devices into Product Clouds. "
                              "Authenticate with `Authorization: Bearer <token>` (`bindery token create`).")
    app.state.settings = settings
    app.state.jobs = Jobs(settings)  # its threads start with the first job

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            if name != "Cache-Control" or name not in response.headers:
                response.headers[name] = value
        if request.url.path in ("/docs", "/redoc"):  # Swagger UI needs its own script
            response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
        return response

    app.add_middleware(BodyLimit, limit=settings.web_max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        detail = validation_detail(exc)
        if not request.url.path.startswith("/api"):
            first = detail[0] if detail else {"loc": [], "msg": "invalid request"}
            field = first["loc"][-1] if first["loc"] else "request"
            return pages.error_page(request, BadInput(f"{field}: {first['msg']}"), 422)
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> Response:
        if is_unavailable(exc):
            return await rule_error(request, unavailable(exc, settings.resolved_database_url))
        return await internal_error(request, exc)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        """The web's last boundary: the traceback to the server log, one line to the caller."""
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": f"internal error ({exc.__class__.__name__})"}, status_code=500,
                            headers=SECURITY_HEADERS)

    @app.exception_handler(BinderyError)
    async def rule_error(request: Request, exc: BinderyError) -> Response:
        if not request.url.path.startswith("/api"):
            response = pages.error_page(request, exc, status_of(exc))
        else:
            headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, NotAuthenticated) else None
            response = JSONResponse({"detail": in_body_words(exc)}, status_code=status_of(exc), headers=headers)
        if isinstance(exc, DatabaseUnavailable | TooManyAttempts):
            response.headers["Retry-After"] = str(exc.retry_after_seconds)
        return response

    @app.exception_handler(IntegrityError)
    async def conflict(request: Request, exc: IntegrityError) -> Response:
        """A change the database refused (a race, or a row still in use): nothing was changed."""
        return await rule_error(request, AlreadyExists("that conflicts with existing data (still in use, or "
                                                       "changed at the same time); nothing was changed"))

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        """Browsers ask for it whatever the page says (the JSON answers, /docs): the pages' icon."""
        return RedirectResponse("/static/favicon.svg", status_code=301)

    app.include_router(api.router)
    app.include_router(history.router)
    app.include_router(pages.router)
    app.include_router(cloud_pages.router)
    app.include_router(batches.router)
    app.include_router(transfer_pages.router)
    app.include_router(views.router)
    return app
