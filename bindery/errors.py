"""Bindery's error tree. Every error carries the exit code the CLI uses for it.

0 ok, 1 failed or refused, 2 bad usage or bad input.
"""

from __future__ import annotations

from collections.abc import Callable


class BinderyError(Exception):
    """Something went wrong that the user should read about in one line. Where the message names a CLI
    command, ``page_text`` says it in the console's words (the console's own control does it) and
    ``api_text`` in the HTTP API's (its method and path, the body's fields)."""

    exit_code = 1

    def __init__(self, *args: object, page_text: str | None = None, api_text: str | None = None):
        super().__init__(*args)
        self.page_text, self.api_text = page_text, api_text

    @classmethod
    def with_fix(cls, text: Callable[[str], str], *, cli: str, page: str, api: str) -> BinderyError:
        """One message, its fix said in each surface's words (a function, not a format string: the message
        carries names users chose)."""
        return cls(text(cli), page_text=text(page), api_text=text(api))


def page_words(exc: BinderyError) -> str:
    """The error as a page shows it."""
    return exc.page_text or str(exc)


class BadInput(BinderyError):
    """The input (file, BID, option value) is wrong; nothing was changed."""

    exit_code = 2


class AlreadyExists(BadInput):
    """A name that must be unique is taken."""


class FieldError(BadInput):
    """A bad value of one named option, said once and shown in each surface's words: the CLI names the
    flag (``--region: 'moon' is not an AWS region``), a page the field's label, next to the field.
    ``problem`` follows the name (after ": " when ``joined``; alone when not ``named``: a positional
    argument has no flag); a ``fix`` differs by surface."""

    def __init__(self, field: str, problem: str, *, joined: bool = True, named: bool = True, cli_fix: str = "",
                 web_fix: str = "", api_fix: str = "", mentions: tuple[str, ...] = ()):
        self.field, self.problem, self.joined, self.named = field, problem, joined, named
        self.cli_fix, self.web_fix, self.api_fix, self.mentions = cli_fix, web_fix, api_fix, mentions
        super().__init__(self.said(flag(field), cli_fix, name_of=flag))

    def said(self, name: str, fix: str = "", name_of: Callable[[str], str] = str) -> str:
        """``mentions``: other options the problem names, as ``{field}`` in it, each in the surface's words."""
        problem = self.problem.format(**{m: name_of(m) for m in self.mentions}) if self.mentions else self.problem
        said = f"{name}{': ' if self.joined else ' '}{problem}" if self.named else problem
        return said + (f"; {fix}" if fix else "")

    def on_page(self, label: str) -> str:
        """The message as a form shows it, under the field labelled ``label``."""
        return self.said(label, self.web_fix)


def flag(field: str) -> str:
    """The CLI flag of an option: ``chunk_size`` is ``--chunk-size``."""
    return f"--{field.replace('_', '-')}"


class NotFound(BadInput):
    """An unknown name. Also used for things that exist but belong to someone else."""


class PermissionDenied(BinderyError):
    """The acting user may not do this (exit code 1, as documented)."""


class TooManyAttempts(BinderyError):
    """Refused for a while after repeated failures (HTTP 429, Retry-After: ``retry_after_seconds``)."""

    def __init__(self, *args: object, retry_after_seconds: int = 60):
        super().__init__(*args)
        self.retry_after_seconds = retry_after_seconds


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
