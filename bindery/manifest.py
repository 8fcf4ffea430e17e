"""The Manifest File: CSV ``device_id,group_id,certificate`` for manual upload to a Product Cloud.

UTF-8, a header row, RFC 4180 quoting (CRLF between records; the PEM's own newlines stay inside
one quoted field), rows ordered by device_id (byte order on every database), gzip when the name
ends in ``.gz``, ``-`` for stdout. Written in chunks straight from the database, into a temporary
file renamed into place at the end, so a failed export never leaves half a file. Spreadsheet
safety: see :mod:`bindery.csvsafe`.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlmodel import Session, col, select

from bindery import audit
from bindery.access import Action, Actor, owned_batch
from bindery.csvsafe import neutralise
from bindery.errors import BadInput, OutputFailed
from bindery.models.catalog import Device

COLUMNS = ["device_id", "group_id", "certificate"]


@dataclass(frozen=True)
class ManifestReport:
    bid: str
    rows: int
    out: str
    sha256: str | None


def _chunks(session: Session, batch_id: int, size: int) -> Iterator[list[tuple[str, str]]]:
    """Keyset pagination in byte order of device_id (COLLATE "C" on PostgreSQL, BINARY on SQLite)."""
    collation = "C" if session.get_bind().dialect.name == "postgresql" else "BINARY"
    ordered = col(Device.device_id).collate(collation)
    last: str | None = None
    while True:
        query = select(Device.device_id, Device.certificate_pem).where(Device.batch_id == batch_id)
        if last is not None:
            query = query.where(ordered > last)
        rows = [(r[0], r[1]) for r in session.exec(query.order_by(ordered).limit(size)).all()]
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def write_rows(handle: IO[str], chunks: Iterator[list[tuple[str, str]]], bid: str) -> int:
    import pandas as pd  # imported when a manifest is written, not by every CLI command

    count = 0
    group = neutralise(bid)
    for index, rows in enumerate(chunks):
        frame = pd.DataFrame(
            {"device_id": [neutralise(d) for d, _ in rows], "group_id": group, "certificate": [p for _, p in rows]},
            columns=COLUMNS,
        )
        frame.to_csv(handle, header=index == 0, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
        count += len(rows)
    if count == 0:
        pd.DataFrame(columns=COLUMNS).to_csv(handle, index=False, lineterminator="\r\n")
    return count


def check_destination(out: str) -> Path | None:
    if out == "-":
        return None
    path = Path(out)
    if not path.parent.is_dir():
        raise BadInput(f"{out}: folder {path.parent} does not exist")
    if path.is_dir():
        raise BadInput(f"{out}: is a folder, not a file name")
    return path


def export_manifest(*, session: Session, actor: Actor, bid: str, out: str, chunk_size: int = 5000,
                    recorded_as: str | None = None) -> ManifestReport:
    """Write the batch's Manifest File; admins only, own account only. The audit event names ``out``, or
    ``recorded_as`` where ``out`` is the server's own temporary file (a console or API download)."""
    batch, _binding = owned_batch(session=session, actor=actor, bid=bid, action=Action.EXPORT_MANIFEST)
    assert batch.id is not None
    path = check_destination(out)
    chunks = _chunks(session, batch.id, chunk_size)
    try:
        if path is None:
            rows = write_rows(sys.stdout, chunks, batch.bid)
            sys.stdout.flush()
            digest = None
        else:
            rows, digest = _write_file(path, chunks, batch.bid)
    except OSError as exc:
        where = "standard output" if path is None else str(path)
        raise OutputFailed(f"cannot write the Manifest File to {where}: {exc.strerror or exc}") from None
    audit.record(session=session, actor=actor.email, action="manifest.export", subject=batch.bid, rows=rows,
                 out=recorded_as or out, sha256=digest)
    return ManifestReport(batch.bid, rows, out, digest)


def _write_file(path: Path, chunks: Iterator[list[tuple[str, str]]], bid: str) -> tuple[int, str]:
    handle_fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle_fd)
    temp = Path(temp_name)
    try:
        if path.name.endswith(".gz"):
            with gzip.open(temp, "wt", encoding="utf-8", newline="") as handle:
                rows = write_rows(handle, chunks, bid)
        else:
            with temp.open("w", encoding="utf-8", newline="") as handle:
                rows = write_rows(handle, chunks, bid)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    digest = hashlib.sha256()
    with path.open("rb") as written:
        while block := written.read(1 << 20):
            digest.update(block)
    return rows, digest.hexdigest()
