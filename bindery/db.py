"""Engines, sessions and the schema: built on demand, never at import time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

from bindery.errors import BinderyError, SchemaNotReady
from bindery.settings import Settings, get_settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself, see _sqlite_begin
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    """Take SQLite's write lock at BEGIN: a transaction that read first could otherwise fail with
    'database is locked' when it later writes while another writer is active."""
    connection.exec_driver_sql("BEGIN IMMEDIATE")


@cache
def engine_for(url: str) -> Engine:
    """One engine (and connection pool) per database URL and process."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


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
        current = current_revision(get_engine(settings))
    except Exception as exc:  # connection refused, bad URL, ...
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
    with Session(get_engine(settings), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
