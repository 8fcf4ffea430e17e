"""`bindery doctor`: what an installation needs, checked one line at a time, each problem with its fix."""

from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.fernet import Fernet
from sqlmodel import Session, func, select

from bindery import db as database
from bindery.errors import BinderyError, one_line
from bindery.models.catalog import TrustAnchor
from bindery.models.clouds import SigningKey
from bindery.settings import Settings


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    said: str
    fix: str = ""

    def line(self) -> str:
        fix = "" if self.ok else f" — fix: {self.fix}"
        return f"{'ok' if self.ok else 'problem':8} {self.check}: {self.said}{fix}"


def _database(settings: Settings) -> Finding:
    where = database.redact_url(settings.resolved_database_url)
    try:
        with database.outage_boundary(settings.resolved_database_url):
            current = database.current_revision(database.get_engine(settings))
    except BinderyError as exc:
        return Finding("database", False, str(exc), "start the database, or set BINDERY_DATABASE_URL")
    except Exception as exc:  # a bad URL, a missing driver
        return Finding("database", False, f"{where}: {exc.__class__.__name__}: {one_line(exc)}",
                       "check BINDERY_DATABASE_URL")
    head = database.head_revision()
    if current != head:
        return Finding("database", False, f"{where} is at revision {current or 'none'}, the code needs {head}",
                       "bindery db upgrade")
    return Finding("database", True, f"{where} at revision {current}")


def _secret_key(settings: Settings) -> Finding:
    if settings.secret_key:
        try:
            Fernet(settings.secret_key.encode())
        except ValueError:
            return Finding("secret key", False, "BINDERY_SECRET_KEY is not a Fernet key",
                           "set it to the output of `python -c 'from cryptography.fernet import Fernet; "
                           "print(Fernet.generate_key().decode())'`")
        return Finding("secret key", True, "BINDERY_SECRET_KEY is set")
    path = settings.secret_key_file
    if not path.exists():
        return Finding("secret key", True, f"none yet: one is generated into {path} on first use (set "
                       "BINDERY_SECRET_KEY in production)")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return Finding("secret key", False, f"{path} is readable by others (mode {mode:o})", f"chmod 600 {path}")
    return Finding("secret key", True, f"{path} (mode {mode:o})")


def _count(settings: Settings, model: type[TrustAnchor] | type[SigningKey]) -> int:
    with Session(database.get_engine(settings)) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def _trust_anchors(settings: Settings) -> Finding:
    count = _count(settings, TrustAnchor)
    if count == 0:
        return Finding("trust anchors", False, "none stored: no reel can be verified",
                       "bindery trust add --vendor all (or your vendor's CA files)")
    return Finding("trust anchors", True, f"{count} stored")


def _signing_key(settings: Settings) -> Finding:
    count = _count(settings, SigningKey)
    return Finding("signing key", True, "ES256 key present" if count else
                   "none yet: made on first use by an aws or azure Product Cloud API")


def _prefect(settings: Settings) -> Finding:
    url = settings.prefect_api_url
    if not url:
        return Finding("Prefect API", True, "PREFECT_API_URL not set: flows run on a temporary local server")
    import httpx

    auth = settings.prefect_api_auth_string
    try:
        answer = httpx.get(f"{url.rstrip('/')}/health", timeout=min(10.0, settings.http_timeout),
                           auth=tuple(auth.split(":", 1)) if auth else None)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        return Finding("Prefect API", False, f"{url} unreachable ({exc.__class__.__name__})",
                       "start it (make server) or fix PREFECT_API_URL")
    if answer.status_code == 401:
        return Finding("Prefect API", False, f"{url} refuses us (401)", "set PREFECT_API_AUTH_STRING")
    if answer.status_code != 200:
        return Finding("Prefect API", False, f"{url} answered {answer.status_code}", "check the server's log")
    return Finding("Prefect API", True, f"{url} healthy")


def examine(settings: Settings) -> list[Finding]:
    """Every check; those that need the database are skipped when it is not usable."""
    first = _database(settings)
    checks: list[Callable[[Settings], Finding]] = [_secret_key, _prefect]
    if first.ok:
        checks[1:1] = [_trust_anchors, _signing_key]
    return [first, *(check(settings) for check in checks)]
