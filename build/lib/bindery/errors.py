"""Bindery's error tree. Every error carries the exit code the CLI uses for it.

0 ok, 1 failed or refused, 2 bad usage or bad input.
"""

from __future__ import annotations


class BinderyError(Exception):
    """Something went wrong that the user should read about in one line."""

    exit_code = 1


class BadInput(BinderyError):
    """The input (file, BID, option value) is wrong; nothing was changed."""

    exit_code = 2


class NotFound(BadInput):
    """An unknown name. Also used for things that exist but belong to someone else."""


class AlreadyExists(BadInput):
    """A name that must be unique is taken."""


class PermissionDenied(BinderyError):
    """The acting user may not do this (exit code 1, as documented)."""


class DatabaseUnavailable(BinderyError):
    """The database cannot be reached, or went away mid-operation (HTTP 503; retry later)."""

    retry_after_seconds = 10


class OutputFailed(BinderyError):
    """An output could not be written (disk full, permission denied); nothing was left at the target."""


class SchemaNotReady(BinderyError):
    """The database schema is missing or behind the code."""


class ReelRejected(BadInput):
    """A reel with bad entries; ``problems`` lists every one (``file: entry: reason``)."""

    def __init__(self, message: str, problems: list[str], notes: list[str] | None = None):
        super().__init__(message)
        self.problems = problems
        self.notes = notes or []


def one_line(exc: BaseException, limit: int = 160) -> str:
    """An exception's message as one short line (libraries' messages span lines and echo input)."""
    text = " ".join(str(exc).split())
    return (text[: limit - 1] + "…" if len(text) > limit else text) or exc.__class__.__name__
