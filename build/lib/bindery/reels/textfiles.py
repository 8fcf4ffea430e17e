"""Opening reel files as text, transparently gunzipped (a Manifest File may be .csv.gz)."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import IO

from bindery.errors import BadInput

GZIP_MAGIC = b"\x1f\x8b"


def read_head(path: Path, size: int = 4096) -> bytes:
    try:
        with path.open("rb") as handle:
            head = handle.read(size)
            if head.startswith(GZIP_MAGIC):
                handle.seek(0)
                with gzip.open(handle) as unzipped:
                    return unzipped.read(size)
            return head
    except (OSError, EOFError) as exc:
        raise BadInput(f"{path.name}: cannot read file ({exc.__class__.__name__}: {exc})") from None


def open_binary(path: Path) -> IO[bytes]:
    with path.open("rb") as probe:
        gzipped = probe.read(2) == GZIP_MAGIC
    if gzipped:
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def open_text(path: Path) -> IO[str]:
    with path.open("rb") as probe:
        gzipped = probe.read(2) == GZIP_MAGIC
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open("r", encoding="utf-8-sig", newline="")
