"""Alembic migrations build exactly the models' schema on both databases, and run down and up again."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import bindery.models  # noqa: F401
from bindery import db as database
from bindery.settings import Settings


def test_no_drift_between_migrations_and_models(settings: Settings) -> None:
    with database.get_engine(settings).connect() as connection:
        drift = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}),
                                 SQLModel.metadata)
    assert drift == []


def test_downgrade_to_base_and_upgrade_again(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    url = f"sqlite:///{tmp_path / 'down.db'}"
    database.upgrade(Settings(database_url=url))
    config = database.alembic_config(url)
    command.downgrade(config, "base")
    assert database.current_revision(database.engine_for(url)) is None
    database.upgrade(Settings(database_url=url))
    assert database.current_revision(database.engine_for(url)) == database.head_revision()
