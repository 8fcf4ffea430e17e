"""CSV reels: Bindery's own (the Manifest File) and Espressif's ``MAC,cn,cert``."""

from __future__ import annotations

import csv
import gzip
import sys
import zlib

from bindery.csvsafe import restore
from bindery.errors import BadInput
from bindery.reels.base import RawEntry, ReadRequest, ReelHeader, Sink
from bindery.reels.textfiles import open_text

BINDERY_COLUMNS = ["device_id", "group_id", "certificate"]
ESPRESSIF_COLUMNS = ["mac", "cn", "cert"]


def _rows(request: ReadRequest, expected: list[str], bindery: bool, sink: Sink) -> int:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    source = request.path.name
    try:
        with open_text(request.path) as handle:
            reader = csv.reader(handle, strict=True)
            header = next(reader, None)
            if header is None:
                raise BadInput(f"{source}: file is empty")
            found = [h.strip() if bindery else h.strip().lower() for h in header]
            if found != expected:
                missing = [c for c in expected if c not in found]
                detail = f"missing column(s) {', '.join(missing)}" if missing else f"found {','.join(header)}"
                raise BadInput(f"{source}: header must be {','.join(expected)} ({detail})")
            count = 0
            for number, row in enumerate(reader, start=2):
                if not row:
                    continue
                count += 1
                ref = f"row {number}"
                if len(row) != len(expected):
                    sink(RawEntry(ref, problem=f"expected {len(expected)} fields, found {len(row)}"))
                    continue
                sink(_entry(ref, row, bindery))
            return count
    except csv.Error as exc:
        raise BadInput(f"{source}: malformed CSV ({exc})") from None
    except UnicodeDecodeError:
        raise BadInput(f"{source}: not UTF-8 text") from None
    except (EOFError, gzip.BadGzipFile, zlib.error):
        raise BadInput(f"{source}: truncated or corrupt gzip file") from None


def _entry(ref: str, row: list[str], bindery: bool) -> RawEntry:
    if bindery:
        device_id, group_id, cert = restore(row[0]), restore(row[1]), row[2]
    else:
        device_id, group_id, cert = row[0].strip(), None, row[2]
    if not cert.strip():
        return RawEntry(ref, device_id=device_id, problem="certificate is empty")
    return RawEntry(ref, device_id=device_id, group_id=group_id, cert=cert.encode("utf-8"))


def read_bindery_csv(request: ReadRequest, sink: Sink) -> ReelHeader:
    header = ReelHeader(format="bindery-csv", vendor="bindery")
    groups: set[str] = set()

    def collect(entry: RawEntry) -> None:
        if entry.group_id is not None and not entry.problem:
            groups.add(entry.group_id)
            if len(groups) > 1:
                first = sorted(groups - {entry.group_id})[0]
                entry.problem = f"group_id {entry.group_id!r} differs from the reel's {first!r}"
                groups.discard(entry.group_id)
        sink(entry)

    _rows(request, BINDERY_COLUMNS, True, collect)
    header.bid = next(iter(groups), None)
    return header


def read_espressif(request: ReadRequest, sink: Sink) -> ReelHeader:
    _rows(request, ESPRESSIF_COLUMNS, False, sink)
    return ReelHeader(format="espressif", vendor="espressif")
