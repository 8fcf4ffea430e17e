"""Engines, sessions and the schema: built on demand, never at import time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlmodel import Session

from bindery.errors import BinderyError, DatabaseUnavailable, SchemaNotReady
from bindery.settings import Settings, get_settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
T = TypeVar("T")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself, see _sqlite_begin
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={int(get_settings().sqlite_busy_timeout * 1000)}")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    """Take SQLite's write lock at BEGIN: a transaction that read first could otherwise fail with
    'database is locked' when it later writes while another writer is active."""
    connection.exec_driver_sql("BEGIN IMMEDIATE")


@cache
def engine_for(url: str) -> Engine:
    """One engine (and connection pool) per database URL and process, with the timeouts of the settings:
    nothing waits on a silent network for ever."""
    settings = get_settings()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": settings.sqlite_busy_timeout,
                                                  "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    statement_ms = int(settings.database_statement_timeout * 1000)
    return create_engine(url, pool_pre_ping=True, connect_args={
        "connect_timeout": max(1, round(settings.database_connect_timeout)),
        "options": f"-c statement_timeout={statement_ms}"})


DISCONNECT_REASONS = (
    ("connection refused", "connection refused"), ("timeout expired", "connection timed out"),
    ("could not translate host name", "unknown host"), ("name or service not known", "unknown host"),
    ("does not exist", "database does not exist"), ("password authentication failed", "authentication failed"),
    ("server closed the connection", "connection lost"), ("terminating connection", "server shut down"),
    ("the database system is", "server starting up or shutting down"), ("statement timeout", "statement timed out"),
    ("consuming input failed", "connection lost"), ("ssl", "connection lost"),
)


def is_unavailable(exc: BaseException) -> bool:
    """An outage (the database unreachable, or gone mid-operation), not a rule or a bug."""
    return isinstance(exc, (OperationalError, InterfaceError)) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated)


def unavailable(exc: BaseException, url: str) -> DatabaseUnavailable:
    """One line: where (no user or password) and why, without the driver's hints and links."""
    text = str(getattr(exc, "orig", None) or exc).lower()
    reason = next((said for found, said in DISCONNECT_REASONS if found in text),
                  (text.strip().splitlines() or [exc.__class__.__name__])[0][:120])
    parsed = make_url(url)
    where = URL.create(parsed.get_backend_name(), host=parsed.host, port=parsed.port, database=parsed.database)
    return DatabaseUnavailable(f"database unreachable ({where.render_as_string()}): {reason}")


def through_outage(call: Callable[[], T], *, url: str, seconds: float) -> T:
    """``call()``, retried with backoff while the database is unreachable, for up to ``seconds``; then
    DatabaseUnavailable. For work that must survive a restart (a write after the target confirmed)."""
    deadline = time.monotonic() + seconds
    delay = 0.5
    while True:
        try:
            return call()
        except DBAPIError as exc:
            if not is_unavailable(exc):
                raise
            if time.monotonic() + delay > deadline:
                raise unavailable(exc, url) from None
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


@contextmanager
def outage_boundary(url: str) -> Iterator[None]:
    """Database errors that mean an outage become DatabaseUnavailable (exit 1, HTTP 503)."""
    try:
        yield
    except DBAPIError as exc:
        if is_unavailable(exc):
            raise unavailable(exc, url) from None
        raise


def get_engine(settings: Settings | None = None) -> Engine:
    return engine_for((settings or get_settings()).resolved_database_url)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(settings: Settings | None = None) -> tuple[str | None, str | None]:
    """Apply every migration (idempotent). Returns (revision before, revision after)."""
    settings = settings or get_settings()
    engine = get_engine(settings)
    before = current_revision(engine)
    with engine.begin() as connection:
        config = alembic_config(settings.resolved_database_url)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    _checked.discard(settings.resolved_database_url)
    return before, current_revision(engine)


_checked: set[str] = set()


def ensure_schema(settings: Settings) -> None:
    """Refuse to work on a database whose schema is missing or behind (checked once per process)."""
    url = settings.resolved_database_url
    if url in _checked:
        return
    try:
        with outage_boundary(url):
            current = current_revision(get_engine(settings))
    except DatabaseUnavailable:
        raise
    except Exception as exc:  # a bad URL, a missing driver, ...
        raise BinderyError(f"cannot open database {redact_url(url)}: {exc.__class__.__name__}: {exc}") from exc
    head = head_revision()
    if current is None:
        raise SchemaNotReady("database schema is missing: run `bindery db upgrade` first")
    if current != head:
        raise SchemaNotReady(f"database schema is at {current}, code needs {head}: run `bindery db upgrade`")
    _checked.add(url)


def redact_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@contextmanager
def session_scope(settings: Settings | None = None) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on any error."""
    settings = settings or get_settings()
    ensure_schema(settings)
    with outage_boundary(settings.resolved_database_url), \
            Session(get_engine(settings), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            with suppress(DBAPIError):  # the connection may be gone already
                session.rollback()
            raise
