"""Unexpected errors: one line for the person, the traceback in a log file under BINDERY_HOME."""

from __future__ import annotations

import traceback
import warnings
from datetime import UTC, datetime
from pathlib import Path

from bindery.errors import one_line

LOG_NAME = "errors.log"


def log_path() -> Path:
    from bindery.settings import get_settings, home_fallback

    try:
        home = get_settings().home
    except Exception:  # settings themselves may be what is broken
        home = home_fallback()
    return home / "logs" / LOG_NAME


def _log_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: object = None, line: str | None = None) -> None:
    try:
        path = log_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            shown = warnings.formatwarning(message, category, filename, lineno, line)
            handle.write(f"--- {datetime.now(UTC).isoformat()} {shown}")
    except OSError:
        pass


def route_warnings() -> None:
    """Libraries' warnings (cryptography on odd certificates, say) go to the log, not the terminal."""
    warnings.showwarning = _log_warning


def record(exc: BaseException, where: str) -> str:
    """Append the traceback to the log; the one line to show, naming the log."""
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"--- {datetime.now(UTC).isoformat()} {where}\n")
            handle.write("".join(traceback.format_exception(exc)))
        details = f"; details in {path}"
    except OSError:
        details = " (the error log could not be written)"
    return f"internal error ({exc.__class__.__name__}): {one_line(exc)}{details}"
