"""Output helpers shared by the CLI command groups."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlmodel import Session

from bindery.access import Actor, actor_for
from bindery.errors import BadInput
from bindery.secrets import Secret
from bindery.settings import operator_variable

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
UserOption = Annotated[str | None, typer.Option("--user", help="Acting user's email (default: BINDERY_USER).")]


def acting_email(user: str | None) -> str:
    """The acting user: --user, else BINDERY_USER ("" lets the rules module say that none was given)."""
    from bindery.settings import get_settings

    return user or get_settings().user or ""


def acting(session: Session, user: str | None) -> Actor:
    return actor_for(session=session, email=acting_email(user))


def console() -> Console:
    """stdout; wide tables when piped (rich would otherwise wrap them at 80 columns). Text is printed as it
    is, never read as Rich markup: names, notes and errors may hold brackets ('[/x]' would fail the command,
    '[link=...]' would make a link); a caller wanting markup says print(..., markup=True)."""
    return Console(highlight=False, soft_wrap=True, markup=False, width=None if sys.stdout.isatty() else 160)


def console_err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True, markup=False)  # as console(): text as it is


def iso_time(value: datetime | str | None) -> str:
    """The CLI's one time format: ISO 8601 in UTC with its zone, to the second ("2026-12-02T18:16:01Z")."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str, sort_keys=False))


def print_table(title: str, columns: list[str], rows: list[list[Any]], whole: tuple[str, ...] = ()) -> None:
    """``whole``: columns never wrapped (ids a reader copies)."""
    table = Table(title=title)
    for index, column in enumerate(columns):
        width = max([len(column), *(len(str(row[index] or "")) for row in rows)]) if column in whole else None
        table.add_column(column, no_wrap=column in whole, min_width=width)
    for row in rows:  # cells are text, never markup: a note, an error or a name may hold brackets
        table.add_row(*[Text("" if v is None else str(v)) for v in row])
    console().print(table)


def fold(entries: Iterable[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """(subject, message) pairs grouped by message, in the order each message first came: one cause is one
    line however many entries it hit."""
    groups: dict[str, list[str]] = {}
    for subject, message in entries:
        groups.setdefault(message, []).append(subject)
    return list(groups.items())


def folded_line(label: str, subjects: list[str], message: str, noun: str = "devices") -> str:
    """"failed: d-2: <error>" for one, "failed: 1000 devices (d-0, d-1, … d-999): <error>" for many."""
    if len(subjects) == 1:
        return f"{label}: {subjects[0]}: {message}"
    shown = ", ".join(subjects[:2]) + (f", … {subjects[-1]}" if len(subjects) > 3 else
                                        "".join(f", {s}" for s in subjects[2:]))
    return f"{label}: {len(subjects)} {noun} ({shown}): {message}"


def print_folded(label: str, entries: Iterable[tuple[str, str]], noun: str = "devices") -> None:
    for message, subjects in fold(entries):
        console_err().print(folded_line(label, subjects, message, noun))


def secret_argument(value: str, option: str) -> Secret:
    """A secret given on the command line as itself, ``@FILE`` or ``env:NAME`` (keeps it out of shell
    history). Resolved here, in the CLI only: the operator's own files and environment."""
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise BadInput(f"{option}: cannot read {path} ({exc.__class__.__name__})") from None
    elif value.startswith("env:"):
        name = value[4:]
        text = operator_variable(name).strip()
        if not text:
            raise BadInput(f"{option}: environment variable {name} is empty or not set")
    else:
        text = value
    if not text:
        raise BadInput(f"{option}: empty secret")
    return Secret(text)
