"""`bindery demo`: the README's main job on the embedded default."""

from __future__ import annotations

from pathlib import Path

from bindery import audit
from bindery import db as database
from bindery.catalog import batches, trust
from bindery.catalog.importer import import_reel
from bindery.cli.catalog import print_import_report
from bindery.cli.common import console, print_table
from bindery.db import session_scope
from bindery.reels.demo import write_demo_reel
from bindery.settings import get_settings

DEMO_BID = "DEMO-0001"
DEMO_DEVICES = 1000


def demo() -> None:
    """Dummy reel -> trust -> import -> list, on the configured database (re-runnable)."""
    settings = get_settings()
    out = settings.home / "demo"
    console().print(f"[bold]1. database[/bold] {database.redact_url(settings.resolved_database_url)}")
    database.upgrade(settings)
    reel = out / f"{DEMO_BID}.7z"
    if reel.exists():
        console().print(f"[bold]2. dummy reel[/bold] {reel} (kept from an earlier run)")
        ca_files = sorted((out / "ca").glob("*.pem"))
    else:
        made = write_demo_reel(out=out, bid=DEMO_BID, devices=DEMO_DEVICES, public_url=settings.public_url)
        console().print(f"[bold]2. dummy reel[/bold] {made.reel}, QR code {made.qr_png}")
        ca_files = made.ca_files
    with session_scope(settings) as session:
        added = trust.add_anchors(session=session, paths=list(ca_files), actor=audit.operator_name())
    console().print(f"[bold]3. trust[/bold] {sum(a.new for a in added)} new of {len(added)} CA certificates")
    console().print("[bold]4. import[/bold]")
    print_import_report(import_reel(settings=settings, path=reel))
    with session_scope(settings) as session:
        rows = [batches.batch_summary(b) for b in batches.list_batches(session=session)]
    print_table("5. catalog", ["BID", "vendor", "slot", "devices", "imported at"],
                [[r["bid"], r["vendor"], r["slot"], r["devices"], r["imported_at"][:19]] for r in rows])
    console().print(f"QR code of the reel: {Path(out / (DEMO_BID + '-qr.png'))}")
