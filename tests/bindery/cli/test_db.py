"""`bindery db upgrade` and the schema guard every other command passes through."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli


def test_commands_refuse_a_missing_schema_then_upgrade_is_idempotent(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BINDERY_DATABASE_URL", raising=False)
    cli = Cli(capsys, monkeypatch)
    missing = cli("batch", "list")
    assert missing.code == 1 and "schema is missing: run `bindery db upgrade`" in missing.err
    first = cli.ok("db", "upgrade")
    assert "upgraded from empty to" in first.out and str(tmp_path / "home" / "bindery.db") in first.out
    second = cli.ok("db", "upgrade")
    assert "is up to date" in second.out
    assert cli.ok("batch", "list", "--json").json == []


def test_behind_schema_is_reported(cli: Cli, settings: object) -> None:
    from sqlalchemy import text

    from bindery import db as database
    from bindery.settings import Settings

    assert isinstance(settings, Settings)
    engine = database.get_engine(settings)
    with engine.begin() as connection:
        head = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        connection.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    database._checked.clear()
    try:
        result = cli("batch", "list")
        assert result.code == 1 and "schema is at 0000, code needs" in result.err
    finally:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})


def test_unreachable_database_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_DATABASE_URL", "postgresql+psycopg://nobody:secret@127.0.0.1:1/none")
    result = Cli(capsys, monkeypatch)("batch", "list")
    assert result.code == 1
    assert result.err == "error: database unreachable (postgresql://127.0.0.1:1/none): connection refused\n"


@pytest.mark.parametrize("args", [["reel", "import"], ["batch", "list", "--nope"], ["no-such-command"]])
def test_bad_usage_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                           args: list[str]) -> None:
    monkeypatch.setenv("BINDERY_HOME", str(tmp_path / "home"))
    result = Cli(capsys, monkeypatch)(*args)
    assert result.code == 2 and result.err.strip()
