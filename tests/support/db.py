"""Looking into the database from tests, through plain SQL."""

from __future__ import annotations

from sqlalchemy import text

from bindery import db as database

CATALOG_TABLES = ("batch", "device", "trust_anchor", "audit_event")


def counts(url: str, tables: tuple[str, ...] = CATALOG_TABLES) -> dict[str, int]:
    with database.engine_for(url).connect() as connection:
        return {t: connection.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in tables}


def scalar(url: str, sql: str, **params: object) -> object:
    with database.engine_for(url).connect() as connection:
        return connection.execute(text(sql), params).scalar()


def rows(url: str, sql: str, **params: object) -> list[tuple[object, ...]]:
    with database.engine_for(url).connect() as connection:
        return [tuple(r) for r in connection.execute(text(sql), params)]


def execute(url: str, sql: str, **params: object) -> None:
    with database.engine_for(url).begin() as connection:
        connection.execute(text(sql), params)
