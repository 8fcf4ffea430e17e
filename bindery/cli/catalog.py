"""`bindery trust`, `bindery reel` and `bindery batch`: the device catalog."""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bindery import anchors, audit, binding, transfer
from bindery.catalog import batches, trust
from bindery.catalog.importer import ImportReport, import_reel
from bindery.cli.common import (
    JsonOption,
    UserOption,
    acting,
    acting_email,
    console,
    console_err,
    folded_line,
    iso_time,
    print_json,
    print_table,
)
from bindery.db import session_scope
from bindery.errors import BadInput, ReelRejected
from bindery.reels import FORMATS
from bindery.reels.demo import DEMO_FORMATS, write_demo_reel
from bindery.settings import get_settings

trust_app = typer.Typer(help="Vendor CA and manifest-signer certificates.", no_args_is_help=True)
reel_app = typer.Typer(help="Vendor reel files.", no_args_is_help=True)
batch_app = typer.Typer(help="Batches in the catalog.", no_args_is_help=True)

@trust_app.command("add")
def trust_add(
    files: Annotated[list[Path] | None, typer.Argument(help="PEM or DER certificate files.")] = None,
    vendor: Annotated[str | None, typer.Option(
        help=f"Install the public anchors Bindery ships: {', '.join(anchors.VENDORS)} or all.")] = None,
) -> None:
    """Store CA certificates (roots, intermediates) and Microchip manifest signers."""
    paths = list(files or [])
    if vendor is not None:
        if vendor not in (*anchors.VENDORS, "all"):
            raise BadInput(f"unknown vendor {vendor!r}: choose one of {', '.join(anchors.VENDORS)} or all")
        paths += anchors.vendor_files(vendor)
    if not paths:
        raise BadInput("name certificate files, or --vendor")
    with session_scope() as session:
        added = trust.add_anchors(session=session, paths=paths, actor=audit.operator_name())
    for item in added:
        state = "added" if item.new else "already trusted"
        console().print(f"{state}: {item.kind} {item.subject} ({item.source})")


@trust_app.command("list")
def trust_list(as_json: JsonOption = False) -> None:
    """List the stored trust anchors."""
    with session_scope() as session:
        anchors = trust.list_anchors(session=session)
    rows = [{"kind": a.kind, "subject": a.subject, "issuer": a.issuer, "sha256": a.fingerprint_sha256,
             "key_id": a.key_id, "not_before": a.not_before.isoformat(), "not_after": a.not_after.isoformat()}
            for a in anchors]
    if as_json:
        print_json(rows)
    else:
        print_table("Trust anchors", ["kind", "subject", "not after", "sha256"],
                    [[a.kind, trust.anchor_name(a), iso_time(a.not_after), a.fingerprint_sha256[:16] + "…"]
                     for a in anchors])


def parse_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadInput(f"--at {value!r} is not an ISO 8601 date or time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@reel_app.command("import")
def reel_import(
    file: Annotated[Path, typer.Argument(help="Reel file, or a folder of certificate files or with a manifest.")],
    bid: Annotated[str | None, typer.Option(help="Product Batch ID, when the file carries none.")] = None,
    fmt: Annotated[str, typer.Option("--format", help=f"One of {', '.join(FORMATS)}.")] = "auto",
    slot: Annotated[str, typer.Option(help="Infineon certificate set: E0E0 (ECC), E0E1, E0E2 (RSA).")] = "E0E0",
    skip_invalid: Annotated[bool, typer.Option(help="Import the valid entries, report the rest.")] = False,
    at: Annotated[str | None, typer.Option(help="Verify validity at this time instead of now (ISO 8601).")] = None,
) -> None:
    """Import a vendor reel, verifying every certificate against the trust anchors."""
    settings = get_settings()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console_err(), transient=True) as bar:
        task = bar.add_task("reading", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total or None)

        try:
            report = import_reel(settings=settings, path=file, bid=bid, fmt=fmt, slot=slot,
                                 skip_invalid=skip_invalid, at=parse_at(at), progress=progress)
        except ReelRejected as exc:
            bar.stop()
            for note in exc.notes:
                console_err().print(f"note: {note}")
            for line in folded_problems(exc.problems):
                console_err().print(line)
            raise
    print_import_report(report)


ENTRY = re.compile(r"^(?P<where>.*?\(device [^)]*\)|[^:]*: [^:]*): (?P<reason>.+)$", re.S)
FIXES = {"untrusted chain": "trust the vendor's CA first: bindery trust add CA-FILES (or --vendor NAME)",
         "has expired": "check the reel's dates, or verify at another time with --at",
         "not yet valid": "check the reel's dates, or verify at another time with --at"}


def folded_problems(problems: list[str]) -> list[str]:
    """A reel's problems, one line per cause: "reel.7z: 200 entries (a, b, … z): <reason> — fix: …"
    instead of the same reason 200 times; a cause met once or twice keeps its full lines."""
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for problem in problems:
        match = ENTRY.match(problem)
        if match is None:
            groups.setdefault((problem, ""), []).append((problem, problem))
            continue
        source, _, where = match["where"].partition(": ")
        device = re.search(r"\(device ([^)]*)\)$", where)
        groups.setdefault((source, match["reason"]), []).append((device[1] if device else where, problem))
    lines = []
    for (source, reason), entries in groups.items():
        if len(entries) <= 2 or not reason:  # two lines read as well as one
            lines += [problem for _, problem in entries]
            continue
        fix = next((f" — fix: {fix}" for cue, fix in FIXES.items() if cue in reason), "")
        lines.append(folded_line(source, [label for label, _ in entries], reason, noun="entries") + fix)
    return lines


def print_import_report(report: ImportReport) -> None:
    for note in report.notes:
        console_err().print(f"note: {note}")
    if report.already_imported:
        since = (f" (some of its devices were split off since, into {', '.join(report.split_into)})"
                 if report.split_into else "")
        console().print(f"{report.source_name} is already imported as batch {report.bid}{since}: nothing to do")
        return
    for line in folded_problems(report.problems):
        console_err().print(f"skipped: {line}")
    console().print(f"imported batch {report.bid}: {report.imported} of {report.entries} devices "
                    f"({report.vendor}, {report.format}{', slot ' + report.slot if report.slot else ''})")


@reel_app.command("demo")
def reel_demo(
    bid: Annotated[str, typer.Option(help="Product Batch ID of the dummy reel.")],
    devices: Annotated[int, typer.Option(help="How many devices.")],
    out: Annotated[Path, typer.Option(help="Folder to write the reel, its CA and QR code into.")],
    fmt: Annotated[str, typer.Option("--format", help=f"One of {', '.join(DEMO_FORMATS)}.")] = "infineon",
    base_url: Annotated[str | None, typer.Option(help="The console's address the QR code links to, as phones "
                                                      "reach it (default: BINDERY_PUBLIC_URL).")] = None,
) -> None:
    """Write a dummy reel with a fresh demo CA chain and the reel's QR code, then say what to run next."""
    public_url = base_url or get_settings().public_url
    parts = urlsplit(public_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadInput(f"--base-url: {public_url[:80]!r} is not an http:// or https:// address")
    demo = write_demo_reel(out=out, bid=bid, devices=devices, fmt=fmt, public_url=public_url.rstrip("/"))
    console().print(f"reel: {demo.reel}")
    console().print(f"CA certificates: {' '.join(str(p) for p in demo.ca_files)}")
    console().print(f"QR code: {demo.qr_svg} and {demo.qr_png} -> {demo.qr_text}")
    cas = " ".join(shlex.quote(str(p)) for p in demo.ca_files)
    console().print(f"next: bindery trust add {cas}\n      bindery reel import {shlex.quote(str(demo.reel))}\n"
                    f"      bindery bind {shlex.quote(bid)}   (or scan the QR code on a phone)")


@batch_app.command("list")
def batch_list(as_json: JsonOption = False, user: UserOption = None) -> None:
    """List the batches in the catalog, or with --user the batches of your account."""
    if acting_email(user):
        with session_scope() as session:
            owned = binding.account_batches(session=session, actor=acting(session, user))
        print_account_batches(owned, as_json)
        return
    with session_scope() as session:
        rows = [batches.batch_summary(b) for b in batches.list_batches(session=session)]
    if as_json:
        print_json(rows)
    else:
        print_table("Batches", ["BID", "vendor", "model", "slot", "devices", "imported at"],
                    [[r["bid"], r["vendor"], r["model"], r["slot"], r["devices"], iso_time(r["imported_at"])]
                     for r in rows])


def print_account_batches(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json(rows)
        return
    print_table("Batches", ["BID", "vendor", "devices", "bound", "provisioned", "failed", "bound at", "bound by",
                            "target"],
                [[r["bid"], r["vendor"], r["devices"], r["bound"],
                  ", ".join(f"{k}: {v}" for k, v in r["provisioned"].items()),
                  ", ".join(f"{k}: {v}" for k, v in r["failed"].items()), iso_time(r["bound_at"]), r["bound_by"],
                  r["target"]] for r in rows])


@batch_app.command("show")
def batch_show(bid: str, as_json: JsonOption = False, user: UserOption = None) -> None:
    """Show one batch: from the catalog, or with --user as your account sees it."""
    offer = None
    with session_scope() as session:
        if acting_email(user):
            actor = acting(session, user)
            summary = binding.batch_view(session=session, actor=actor, bid=bid)
            offer = transfer.open_offer_of(session=session, actor=actor, bid=bid)
        else:
            summary = batches.batch_summary(batches.get_batch(session=session, bid=bid))
    if as_json:
        print_json(summary)
    else:
        for key, value in summary.items():
            if key != "custody":
                console().print(f"{key:>12}: {value}")
        if offer is not None:  # nothing changes the batch meanwhile: say so, and how to undo it
            console().print(f"{'on offer':>12}: to {offer['to_account']} since {iso_time(offer['offered_at'])} by "
                            f"{offer['offered_by']}, the code works until {iso_time(offer['expires_at'])}; "
                            f"withdraw it with: bindery batch withdraw {bid}")
        for entry in summary.get("custody", []):
            until = iso_time(entry["to"]) if entry["to"] else "now"
            took = {"bind": "bound", "split": "split"}.get(entry["via"], "accepted")  # by whom it came
            console().print(f"{'custody':>12}: {entry['account']} as {entry['bid']} ({entry['via']}, "
                            f"{iso_time(entry['from'])} to {until}, "
                            + (f"offered by {entry['offered_by']}, " if entry["offered_by"] else "")
                            + f"{took} by {entry['accepted_by']})")


@batch_app.command("set-target")
def batch_set_target(bid: str,
                     cloud_api: Annotated[str, typer.Option("--cloud-api", help="Product Cloud API name.")],
                     user: UserOption = None) -> None:
    """Change the batch's Product Cloud API (admins); provisions nothing."""
    from bindery.provisioning.service import set_target

    with session_scope() as session:
        set_target(session=session, actor=acting(session, user), bid=bid, cloud_api=cloud_api)
    console().print(f"batch {bid} now targets {cloud_api}")
