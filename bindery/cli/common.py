"""Output helpers shared by the CLI command groups."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import Session

from bindery.access import Actor, actor_for

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
UserOption = Annotated[str | None, typer.Option("--user", help="Acting user's email (default: BINDERY_USER).")]


def acting_email(user: str | None) -> str:
    """The acting user: --user, else BINDERY_USER ("" lets the rules module say that none was given)."""
    from bindery.settings import get_settings

    return user or get_settings().user or ""


def acting(session: Session, user: str | None) -> Actor:
    return actor_for(session=session, email=acting_email(user))


def console() -> Console:
    """stdout; wide tables when piped (rich would otherwise wrap them at 80 columns)."""
    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)


def console_err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str, sort_keys=False))


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    console().print(table)
