"""PEM reels: one or many certificates in a file, or a folder of .pem files. device_id = subject CN."""

from __future__ import annotations

import re
from pathlib import Path

from bindery.errors import BadInput
from bindery.reels.base import RawEntry, ReadRequest, ReelHeader, Sink

BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)(?:-----END \1-----|(?=-----BEGIN )|\Z)", re.DOTALL)


def _blocks(path: Path, label: str, sink: Sink) -> int:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{label}: cannot read file ({exc.__class__.__name__})") from None
    count = 0
    for number, match in enumerate(BLOCK.finditer(data), start=1):
        count += 1
        ref = f"{label} certificate {number}"
        block = match.group(0)
        if match.group(1) != b"CERTIFICATE":
            sink(RawEntry(ref, problem=f"PEM block is {match.group(1).decode()}, not CERTIFICATE"))
        elif not block.rstrip().endswith(b"-----END CERTIFICATE-----"):
            sink(RawEntry(ref, problem="malformed PEM: block has no END line (truncated?)"))
        else:
            sink(RawEntry(ref, cert=block))
    if count == 0 and data.strip():
        raise BadInput(f"{label}: no PEM certificate found")
    return count


def read_pem(request: ReadRequest, sink: Sink) -> ReelHeader:
    path = request.path
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".pem", ".crt") and p.is_file())
        if not files:
            raise BadInput(f"{path.name}: folder holds no .pem files")
        for file in files:
            _blocks(file, file.name, sink)
    else:
        _blocks(path, path.name, sink)
    return ReelHeader(format="pem", vendor="generic")
