"""The FastAPI application of `bindery web`: security headers, errors mapped like the CLI's, the JSON
API under /api (Bearer tokens) and the server-rendered console (browser sessions)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import IntegrityError

from bindery.errors import AlreadyExists, BadInput, BinderyError, NotFound, PermissionDenied
from bindery.provisioning.lease import Busy
from bindery.settings import Settings, get_settings
from bindery.web.credentials import NotAuthenticated, TooManyAttempts
from bindery.web.jobs import Jobs

HERE = Path(__file__).parent
CSP = ("default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
STATUS: list[tuple[type[BinderyError], int]] = [
    (NotAuthenticated, 401), (TooManyAttempts, 429), (PermissionDenied, 403), (NotFound, 404),
    (AlreadyExists, 409), (Busy, 409), (BadInput, 422), (BinderyError, 409)]


def status_of(error: BinderyError) -> int:
    """The HTTP status for an error of the rules: the CLI's exit codes, said in HTTP."""
    return next(code for kind, code in STATUS if isinstance(error, kind))


def create_app(settings: Settings | None = None) -> FastAPI:
    from bindery.web import api, pages

    settings = settings or get_settings()
    app = FastAPI(title="Bindery", version="1",
                  description="Bind reels to accounts and provision their devices into Product Clouds. "
                              "Authenticate with `Authorization: Bearer <token>` (`bindery token create`).")
    app.state.settings = settings
    app.state.jobs = Jobs(settings)  # its threads start with the first job

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        if request.url.path in ("/docs", "/redoc"):  # Swagger UI needs its own script
            response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
        else:
            response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(BinderyError)
    async def rule_error(request: Request, exc: BinderyError) -> Response:
        if not request.url.path.startswith("/api"):
            return pages.error_page(request, exc, status_of(exc))
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, NotAuthenticated) else None
        return JSONResponse({"detail": str(exc)}, status_code=status_of(exc), headers=headers)

    @app.exception_handler(IntegrityError)
    async def conflict(request: Request, exc: IntegrityError) -> Response:
        """A change the database refused (a race, or a row still in use): nothing was changed."""
        return await rule_error(request, AlreadyExists("that conflicts with existing data (still in use, or "
                                                       "changed at the same time); nothing was changed"))

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)
    return app
