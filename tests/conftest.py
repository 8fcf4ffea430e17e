"""Shared fixtures: a real SQLite file and a real PostgreSQL database per test, the CLI, demo reels."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bindery import db as database
from bindery.reels.demo import DemoReel, write_demo_reel
from bindery.settings import Settings, get_settings, reset_settings

if "prefect" in sys.modules:  # its settings are read once, at import: PREFECT_HOME below would come too late
    raise RuntimeError("prefect was imported before tests/conftest.py could give this process its PREFECT_HOME")
# This pytest process's own Prefect home, so the temporary server a flow run outside tests/flows starts keeps its
# database there, not in the shared ~/.prefect/prefect.db: two pytest processes at once (xdist workers, two
# checkouts) would migrate that one file together ("database is locked"). Each xdist worker imports this file
# itself and so gets its own (the one it inherits from the controller is replaced); subprocesses inherit it.
PREFECT_HOME = tempfile.mkdtemp(prefix=f"bindery-tests-prefect-{os.getpid()}-")
os.environ["PREFECT_HOME"] = PREFECT_HOME
# That server is new in each process (its database created and migrated): on a loaded machine (xdist workers, two
# checkouts) it may take longer than Prefect's 20 s to answer, as tests/flows' harness allows too.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
atexit.register(shutil.rmtree, PREFECT_HOME, ignore_errors=True)

PG_ADMIN_URL = os.environ.get("BINDERY_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SHARED = Path(__file__).resolve().parents[2] / "shared"
VENDOR_CA = SHARED / "vendor-ca"
MICROCHIP_SAMPLE = SHARED / "vendor-samples" / "microchip-pytrustplatform"
TABLES_KEPT = {"alembic_version"}


def _pg_admin() -> psycopg.Connection:
    try:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:  # no skip: PostgreSQL is part of the test environment
        raise RuntimeError(f"PostgreSQL is required for the test suite ({PG_ADMIN_URL}): {exc}") from exc


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """One migrated PostgreSQL database for the session; tables are emptied between tests."""
    name = f"bindery_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with _pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql+psycopg", database=name).render_as_string(False)
    database.upgrade(Settings(database_url=url))
    yield url
    database.engine_for(url).dispose()
    with _pg_admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    database.upgrade(Settings(database_url=f"sqlite:///{path}"))
    database.engine_for(f"sqlite:///{path}").dispose()
    return path


def _empty_pg(url: str) -> None:
    engine = database.engine_for(url)
    with engine.begin() as connection:
        tables = [row[0] for row in connection.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")) if row[0] not in TABLES_KEPT]
        if tables:
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "bindery.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
        yield url
        database.engine_for(url).dispose()
    else:
        url = request.getfixturevalue("pg_url")
        _empty_pg(url)
        yield url


@pytest.fixture
def settings(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Environment of one Bindery installation, on the parametrized database."""
    home = tmp_path / "home"
    monkeypatch.setenv("BINDERY_HOME", str(home))
    monkeypatch.setenv("BINDERY_DATABASE_URL", db_url)
    monkeypatch.delenv("BINDERY_USER", raising=False)
    return fresh_settings()


def fresh_settings() -> Settings:
    """The settings as the environment is now: the process's cached ones dropped first (get_settings also
    notices a changed environment by itself; this makes a test's intent explicit)."""
    reset_settings()
    return get_settings()


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> object:
        import json

        return json.loads(self.out)


class Cli:
    """Runs the real `bindery` entry point in-process and captures what it prints."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
        self.capsys, self.monkeypatch = capsys, monkeypatch

    def __call__(self, *args: str | Path) -> Result:
        from bindery.cli import main

        self.capsys.readouterr()
        self.monkeypatch.setattr(sys, "argv", ["bindery", *map(str, args)])
        self.monkeypatch.setenv("COLUMNS", "200")
        reset_settings()  # each command reads the environment as a new process would
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def ok(self, *args: str | Path) -> Result:
        result = self(*args)
        assert result.code == 0, f"bindery {' '.join(map(str, args))} failed ({result.code}): {result.err}"
        return result


@pytest.fixture
def cli(settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(capsys, monkeypatch)


@pytest.fixture(scope="session")
def reels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DemoReel]:
    """Small demo reels, one per format, each with its own demo CA chain."""
    root = tmp_path_factory.mktemp("reels")
    url = "http://localhost:8000"
    return {
        "infineon": write_demo_reel(out=root / "infineon", bid="INF-001", devices=4, public_url=url,
                                    slots=("E0E0", "E0E2")),
        "bindery-csv": write_demo_reel(out=root / "csv", bid="CSV-001", devices=4, fmt="bindery-csv",
                                       public_url=url),
        "microchip": write_demo_reel(out=root / "mchp", bid="MCHP-001", devices=3, fmt="microchip",
                                     public_url=url),
    }


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[str]:
    """A reference receiver (Basic auth bindery:pw) on a loopback port; yields its base URL."""
    from bindery.receiver import ReceiverAuth, create_app
    from tests.support.servers import serve

    with serve(create_app(ReceiverAuth(basic="bindery:pw"), tmp_path / "recv.db")) as url:
        yield url
