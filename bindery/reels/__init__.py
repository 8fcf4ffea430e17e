"""Reel readers, one module per vendor format, and content-based format detection."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bindery.errors import BadInput
from bindery.reels.base import ReadRequest, ReelHeader, Sink
from bindery.reels.csvreels import read_bindery_csv, read_espressif
from bindery.reels.infineon import read_infineon
from bindery.reels.microchip import read_microchip
from bindery.reels.pem import read_pem
from bindery.reels.textfiles import read_head

Reader = Callable[[ReadRequest, Sink], ReelHeader]

READERS: dict[str, Reader] = {
    "bindery-csv": read_bindery_csv,
    "infineon": read_infineon,
    "microchip": read_microchip,
    "espressif": read_espressif,
    "pem": read_pem,
}
FORMATS = ("auto", *READERS)
SEVEN_ZIP_MAGIC = b"7z\xbc\xaf\x27\x1c"


def detect_format(path: Path) -> str:
    """Name the reel format from the content, not the file name."""
    if path.is_dir():
        return "pem"
    if not path.exists():
        raise BadInput(f"{path}: no such file")
    head = read_head(path)
    if not head.strip():
        raise BadInput(f"{path.name}: file is empty")
    if head.startswith(SEVEN_ZIP_MAGIC):
        return "infineon"
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"["):
        return "microchip"
    if text.startswith(b"-----BEGIN"):
        return "pem"
    first_line = text.split(b"\n", 1)[0].strip().lower().replace(b" ", b"")
    if first_line == b"device_id,group_id,certificate":
        return "bindery-csv"
    if first_line == b"mac,cn,cert":
        return "espressif"
    raise BadInput(
        f"{path.name}: unknown reel format (not a 7z bundle, JSON manifest, PEM, or a CSV with a known "
        "header); name one with --format"
    )


def reader_for(fmt: str, path: Path) -> tuple[str, Reader]:
    if fmt == "auto":
        fmt = detect_format(path)
    elif fmt not in READERS:
        raise BadInput(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    elif not path.exists():
        raise BadInput(f"{path}: no such file")
    elif fmt != "pem" and not path.is_file():
        raise BadInput(f"{path.name}: not a file (only the pem format reads folders)")
    elif path.is_file() and path.stat().st_size == 0:
        raise BadInput(f"{path.name}: file is empty")
    return fmt, READERS[fmt]
