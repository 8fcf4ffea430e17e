"""Importing a reel in three steps — read, verify (chunked), store — shared by the CLI and the flow.

Read unpacks the reel into a spool of raw chunks; verify checks each chunk against the trust
anchors; store checks duplicates and then writes the batch and its devices in one transaction, so a
rejected reel leaves the database unchanged.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bindery import audit
from bindery.catalog.spool import (
    ChunkWriter,
    device_row_from_record,
    facts_to_record,
    raw_from_record,
    raw_to_record,
    read_records,
)
from bindery.catalog.trust import Anchors, anchor_ders
from bindery.catalog.verify import Rejected, verify_entry
from bindery.db import session_scope
from bindery.errors import AlreadyExists, BadInput, BinderyError, ReelRejected, one_line
from bindery.models.catalog import Batch, Device
from bindery.reels import Reader, reader_for, resolve_reel
from bindery.reels.base import RawEntry, ReadLimits, ReadRequest, ReelHeader, check_bid
from bindery.settings import Settings

Progress = Callable[[str, int, int], None]
LOOKUP_CHUNK = 500


def _no_progress(_stage: str, _done: int, _total: int) -> None:
    return None


@dataclass
class ReelPlan:
    """What the read step learned; small, so it can pass between Prefect tasks."""

    source_name: str
    source_sha256: str
    format: str
    vendor: str
    bid: str
    model: str | None
    slot: str | None
    entries: int
    spool_dir: str
    raw_chunks: list[str] = field(default_factory=list)
    already_imported: bool = False
    notes: list[str] = field(default_factory=list)
    split_into: list[str] = field(default_factory=list)  # already imported: the batches split from it since


@dataclass
class ChunkVerdict:
    index: int
    verified: int
    verified_path: str
    problems: list[str]
    rejected_refs: list[str]
    process: int = field(default_factory=os.getpid)  # which process verified it (all cores used?)


@dataclass
class ImportReport:
    bid: str
    source_name: str
    format: str
    vendor: str
    slot: str | None
    entries: int
    imported: int
    problems: list[str]
    already_imported: bool = False
    notes: list[str] = field(default_factory=list)
    split_into: list[str] = field(default_factory=list)


def split_from_file(session: Session, sha256: str) -> list[str]:
    """The batches split (at any depth) from the batch imported from this file: they keep its digest."""
    return [str(b) for b in session.exec(select(Batch.bid).where(
        Batch.source_sha256 == sha256, col(Batch.split_from_id).is_not(None)).order_by(col(Batch.bid))).all()]


def source_digest(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def _resolve_bid(given: str | None, from_file: str | None, source: str) -> str:
    if given is not None:
        check_bid(given)
        if from_file is not None and from_file != given:
            raise BadInput(f"{source}: --bid {given} does not match the reel's own BID {from_file}")
        return given
    if from_file is None:
        raise BadInput(f"{source}: the reel carries no BID: give one with --bid")
    try:
        return check_bid(from_file)
    except BadInput as exc:
        raise BadInput(f"{source}: {exc}") from None


def _existing(session: Session, bid: str, sha256: str, source: str) -> bool:
    """Whether this file is already imported as ``bid``; refused when the BID is another reel's or a
    split's. A split batch keeps its parent's file digest (where its devices came from), never as an import."""
    batch = session.exec(select(Batch).where(Batch.bid == bid)).first()
    if batch is None:
        return False
    if batch.split_from_id is not None:
        parent = session.get(Batch, batch.split_from_id)
        raise AlreadyExists(f"{source}: BID {bid} is taken by a batch split from {parent.bid if parent else '?'} "
                            f"in Bindery at {batch.imported_at:%Y-%m-%d %H:%M} UTC; nothing was imported")
    if batch.source_sha256 == sha256:
        return True
    raise AlreadyExists(f"{source}: BID {bid} already exists in the catalog "
                        f"(imported from {batch.source_name} at {batch.imported_at:%Y-%m-%d %H:%M} UTC)")


def read_reel(*, settings: Settings, path: Path, bid: str | None = None, fmt: str = "auto",
              slot: str = "E0E0") -> ReelPlan:
    """Step 1: detect, unpack safely and spool the raw entries."""
    path, notes = resolve_reel(Path(path))
    fmt, reader = reader_for(fmt, path)
    sha256 = source_digest(path)
    spool = settings.spool_dir / uuid.uuid4().hex
    spool.mkdir(parents=True)
    try:
        writer = ChunkWriter(spool, "raw", settings.import_chunk_size)
        request = ReadRequest(path=path, slot=slot.upper(), workdir=spool, limits=ReadLimits(
            settings.max_extract_bytes, settings.max_archive_members))

        def sink(entry: RawEntry) -> None:
            writer.write(raw_to_record(entry))

        header = _read(reader, request, sink)
        chunks = writer.close()
        notes += header.notes
        if writer.count == 0:
            raise BadInput(notes[0] if len(notes) == 1 else f"{path.name}: the reel holds no devices")
        final_bid = _resolve_bid(bid, header.bid, path.name)
        with session_scope(settings) as session:
            already = _existing(session, final_bid, sha256, path.name)
            split_into = split_from_file(session, sha256) if already else []
    except BaseException:
        shutil.rmtree(spool, ignore_errors=True)
        raise
    return ReelPlan(
        source_name=path.name, source_sha256=sha256, format=fmt, vendor=header.vendor, bid=final_bid,
        model=header.model, slot=header.slot, entries=writer.count, spool_dir=str(spool),
        raw_chunks=[str(p) for p in chunks], already_imported=already, notes=notes, split_into=split_into,
    )


def _read(reader: Reader, request: ReadRequest, sink: Callable[[RawEntry], None]) -> ReelHeader:
    """The read step's error boundary: whatever a reader meets in a file is bad input, in one line."""
    name = request.path.name
    try:
        return reader(request, sink)
    except BinderyError:
        raise
    except OSError as exc:
        raise BadInput(f"{name}: cannot read ({exc.__class__.__name__}: {exc.strerror or exc})") from None
    except Exception as exc:  # a reader's library met something it did not expect: still the file's fault
        raise BadInput(f"{name}: unreadable reel ({exc.__class__.__name__}: {one_line(exc)})") from None


def verify_chunk(*, plan: ReelPlan, index: int, anchors: Anchors, at: datetime) -> ChunkVerdict:
    """Step 2, one chunk: verify every entry; spool the good ones, describe the bad ones."""
    out = Path(plan.spool_dir) / f"verified-{index:05d}.jsonl"
    problems: list[str] = []
    rejected: list[str] = []
    verified = 0
    writer = ChunkWriter(out.parent, f"verified-{index:05d}", 1 << 62)
    for record in read_records(Path(plan.raw_chunks[index])):
        outcome = verify_entry(raw_from_record(record), anchors, at, plan.bid)
        if isinstance(outcome, Rejected):
            problems.append(outcome.describe(plan.source_name))
            rejected.append(outcome.ref)
        else:
            writer.write(facts_to_record(outcome.ref, outcome.device_id, outcome.facts))
            verified += 1
    paths = writer.close()
    return ChunkVerdict(index, verified, str(paths[0]) if paths else "", problems, rejected)


def _duplicates(session: Session, plan: ReelPlan, verdicts: list[ChunkVerdict]) -> tuple[list[str], set[str]]:
    """Devices whose id or fingerprint appears twice in the reel or already in the catalog."""
    seen_ids: dict[str, str] = {}
    seen_fps: dict[str, str] = {}
    problems: list[str] = []
    bad_refs: set[str] = set()
    for verdict in verdicts:
        if not verdict.verified_path:
            continue
        block: list[dict[str, str]] = []
        for record in read_records(Path(verdict.verified_path)):
            ref, device_id, fp = record["ref"], record["device_id"], record["fingerprint_sha256"]
            where = f"{plan.source_name}: {ref} (device {device_id})"
            if device_id in seen_ids:
                problems.append(f"{where}: duplicate device_id, also at {seen_ids[device_id]}")
                bad_refs.add(ref)
            elif fp in seen_fps:
                problems.append(f"{where}: duplicate certificate (fingerprint), also at {seen_fps[fp]}")
                bad_refs.add(ref)
            else:
                seen_ids[device_id], seen_fps[fp] = ref, ref
                block.append(record)
            if len(block) >= LOOKUP_CHUNK:
                _against_catalog(session, plan, block, problems, bad_refs)
                block = []
        _against_catalog(session, plan, block, problems, bad_refs)
    return problems, bad_refs


def _against_catalog(session: Session, plan: ReelPlan, block: list[dict[str, str]], problems: list[str],
                     bad_refs: set[str]) -> None:
    if not block:
        return
    ids = set(session.exec(select(Device.device_id).where(
        col(Device.device_id).in_([r["device_id"] for r in block]))).all())
    fps = set(session.exec(select(Device.fingerprint_sha256).where(
        col(Device.fingerprint_sha256).in_([r["fingerprint_sha256"] for r in block]))).all())
    for record in block:
        where = f"{plan.source_name}: {record['ref']} (device {record['device_id']})"
        if record["device_id"] in ids:
            problems.append(f"{where}: device_id is already in the catalog")
            bad_refs.add(record["ref"])
        elif record["fingerprint_sha256"] in fps:
            problems.append(f"{where}: certificate is already in the catalog under another device_id")
            bad_refs.add(record["ref"])


def store_reel(*, settings: Settings, plan: ReelPlan, verdicts: Iterable[ChunkVerdict], skip_invalid: bool,
               actor: str) -> ImportReport:
    """Step 3: all or nothing (or the valid ones with ``skip_invalid``), in one transaction."""
    verdicts = sorted(verdicts, key=lambda v: v.index)
    problems = [p for v in verdicts for p in v.problems]
    try:
        with session_scope(settings) as session:
            if _existing(session, plan.bid, plan.source_sha256, plan.source_name):
                plan.split_into = split_from_file(session, plan.source_sha256)
                return _report(plan, 0, [], already=True)
            duplicate_problems, bad_refs = _duplicates(session, plan, verdicts)
            problems += duplicate_problems
            if problems and not skip_invalid:
                raise ReelRejected(f"{plan.source_name}: reel rejected, {len(problems)} of {plan.entries} "
                                   "entries are invalid; nothing was imported", problems, plan.notes)
            good = sum(v.verified for v in verdicts) - len(bad_refs)
            if good == 0:
                raise ReelRejected(f"{plan.source_name}: no valid device in the reel; nothing was imported",
                                   problems, plan.notes)
            batch = Batch(bid=plan.bid, vendor=plan.vendor, model=plan.model, slot=plan.slot,
                          device_count=good, source_format=plan.format, source_name=plan.source_name,
                          source_sha256=plan.source_sha256)
            session.add(batch)
            session.flush()
            assert batch.id is not None
            for verdict in verdicts:
                if verdict.verified_path:
                    _insert_devices(session, Path(verdict.verified_path), batch.id, bad_refs)
            audit.record(session=session, actor=actor, action="reel.import", subject=plan.bid,
                         source=plan.source_name, sha256=plan.source_sha256, devices=good,
                         skipped=len(problems))
    except IntegrityError:
        raise AlreadyExists(f"{plan.source_name}: BID {plan.bid} or some of its devices were imported "
                            "concurrently by another run; nothing was imported") from None
    return _report(plan, good, problems)


def _insert_devices(session: Session, path: Path, batch_id: int, bad_refs: set[str]) -> None:
    rows: list[dict[str, object]] = []
    for record in read_records(path):
        if record["ref"] not in bad_refs:
            rows.append(device_row_from_record(record, batch_id))
        if len(rows) >= 1000:
            session.execute(insert(Device), rows)
            rows = []
    if rows:
        session.execute(insert(Device), rows)


def _report(plan: ReelPlan, imported: int, problems: list[str], already: bool = False) -> ImportReport:
    return ImportReport(bid=plan.bid, source_name=plan.source_name, format=plan.format, vendor=plan.vendor,
                        slot=plan.slot, entries=plan.entries, imported=imported, problems=problems,
                        already_imported=already, notes=plan.notes, split_into=plan.split_into)


def discard_spool(plan: ReelPlan) -> None:
    shutil.rmtree(plan.spool_dir, ignore_errors=True)


def import_reel(*, settings: Settings, path: Path, bid: str | None = None, fmt: str = "auto",
                slot: str = "E0E0", skip_invalid: bool = False, at: datetime | None = None,
                actor: str | None = None, progress: Progress = _no_progress) -> ImportReport:
    """The whole import, verifying chunks in ``settings.verify_workers`` worker processes (all cores by
    default; ``bindery/catalog/parallel.py``)."""
    from bindery.catalog.parallel import verify_chunks

    at = at or datetime.now(UTC)
    actor = actor or audit.operator_name()
    progress("read", 0, 0)
    plan = read_reel(settings=settings, path=path, bid=bid, fmt=fmt, slot=slot)
    try:
        if plan.already_imported:
            return _report(plan, 0, [], already=True)
        with session_scope(settings) as session:
            anchors = anchor_ders(session=session)
        progress("verify", 0, plan.entries)
        checked = [0]

        def verified(verdict: ChunkVerdict) -> None:
            checked[0] += verdict.verified + len(verdict.problems)
            progress("verify", checked[0], plan.entries)

        verdicts = verify_chunks(plan=plan, anchors=anchors, at=at, workers=settings.verify_workers, done=verified)
        progress("store", 0, plan.entries)
        report = store_reel(settings=settings, plan=plan, verdicts=verdicts, skip_invalid=skip_invalid,
                            actor=actor)
        progress("store", plan.entries, plan.entries)
        return report
    finally:
        discard_spool(plan)
