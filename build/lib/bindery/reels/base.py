"""What every reel reader produces: raw entries, not yet verified, and the reel's own header."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bindery.errors import BadInput

BID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEVICE_ID_MAX = 128


def check_bid(bid: str) -> str:
    if not BID_PATTERN.fullmatch(bid or ""):
        shown = bid if len(bid or "") <= 80 else bid[:77] + "..."
        raise BadInput(f"invalid BID {shown!r}: use 1 to 64 letters, digits, '-' or '_'")
    return bid


def device_id_problem(device_id: str | None) -> str | None:
    """Why a device id is unusable, or None."""
    if not device_id:
        return "device_id is empty"
    if len(device_id) > DEVICE_ID_MAX:
        return f"device_id is longer than {DEVICE_ID_MAX} characters"
    if not device_id.isprintable() or device_id != device_id.strip():
        return "device_id has control characters or surrounding spaces"
    return None


@dataclass
class RawEntry:
    """One device as the reel states it. ``problem`` is set when the reader already knows it is bad."""

    ref: str
    device_id: str | None = None
    group_id: str | None = None
    cert: bytes | None = None
    chain: list[bytes] = field(default_factory=list)
    jws: dict[str, Any] | None = None
    problem: str | None = None


@dataclass
class ReelHeader:
    format: str
    vendor: str
    bid: str | None = None
    model: str | None = None
    slot: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReadLimits:
    max_extract_bytes: int
    max_archive_members: int


Sink = Callable[[RawEntry], None]


@dataclass(frozen=True)
class ReadRequest:
    path: Path
    slot: str
    limits: ReadLimits
    workdir: Path
