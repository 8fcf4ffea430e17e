"""The database a benchmark runs on: a fresh SQLite file in its home, or a fresh PostgreSQL database
(created for the run, dropped after it)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

PG_ADMIN = os.environ.get("BINDERY_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def pg_database(prefix: str) -> Iterator[str]:
    """host:port/name of a new PostgreSQL database."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def database(postgres: bool, home: Path, prefix: str) -> Iterator[str]:
    """Bindery's database URL for one benchmark run."""
    if not postgres:
        yield f"sqlite:///{home}/bench.db"
        return
    with pg_database(prefix) as where:
        yield f"postgresql+psycopg://postgres@{where}"
