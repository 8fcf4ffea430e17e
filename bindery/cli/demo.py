"""`bindery demo`: the README's main job on the embedded default (safe to run again)."""

from __future__ import annotations

from sqlmodel import select

from bindery import accounts, audit, binding, manifest
from bindery import db as database
from bindery.access import actor_for
from bindery.catalog import trust
from bindery.catalog.importer import import_reel
from bindery.cli.catalog import print_account_batches, print_import_report
from bindery.cli.common import console
from bindery.db import session_scope
from bindery.reels.demo import write_demo_reel
from bindery.settings import get_settings
from models.accounts import Account, User

DEMO_BID = "DEMO-0001"
DEMO_DEVICES = 1000
DEMO_ACCOUNT = "Demo Account"
DEMO_ADMIN = "admin@demo.bindery.local"


def demo() -> None:
    """Dummy reel -> trust -> import -> account and admin -> bind by QR text -> manifest -> list."""
    settings = get_settings()
    out = settings.home / "demo"
    say = console().print
    say(f"[bold]1. database[/bold] {database.redact_url(settings.resolved_database_url)}")
    database.upgrade(settings)
    reel, qr_text = out / f"{DEMO_BID}.7z", f"{settings.public_url.rstrip('/')}/bind?bid={DEMO_BID}"
    if reel.exists():
        say(f"[bold]2. dummy reel[/bold] {reel} (kept from an earlier run)")
        ca_files = sorted((out / "ca").glob("*.pem"))
    else:
        made = write_demo_reel(out=out, bid=DEMO_BID, devices=DEMO_DEVICES, public_url=settings.public_url)
        say(f"[bold]2. dummy reel[/bold] {made.reel}")
        ca_files, qr_text = made.ca_files, made.qr_text
    with session_scope(settings) as session:
        added = trust.add_anchors(session=session, paths=list(ca_files), actor=audit.operator_name())
    say(f"[bold]3. trust[/bold] {sum(a.new for a in added)} new of {len(added)} CA certificates")
    say("[bold]4. import[/bold]", end=" ")
    print_import_report(import_reel(settings=settings, path=reel))
    with session_scope(settings) as session:
        if session.exec(select(Account).where(Account.name == DEMO_ACCOUNT)).first() is None:
            accounts.create_account(session=session, name=DEMO_ACCOUNT, actor=audit.operator_name())
            session.flush()
        if session.exec(select(User).where(User.email == DEMO_ADMIN)).first() is None:
            accounts.add_user(session=session, email=DEMO_ADMIN, account=DEMO_ACCOUNT, role="admin",
                              actor=audit.operator_name())
    say(f"[bold]5. account[/bold] {DEMO_ACCOUNT}, admin {DEMO_ADMIN}")
    with session_scope(settings) as session:
        actor = actor_for(session=session, email=DEMO_ADMIN)
        outcome = binding.bind(session=session, actor=actor, bid=binding.bid_from_qr(qr_text))
    say(f"[bold]6. bind[/bold] by QR text {qr_text}: "
        + ("already bound" if outcome.already else f"bound {outcome.devices} devices"))
    manifest_path = out / f"{DEMO_BID}-manifest.csv"
    with session_scope(settings) as session:
        report = manifest.export_manifest(session=session, actor=actor_for(session=session, email=DEMO_ADMIN),
                                          bid=DEMO_BID, out=str(manifest_path),
                                          chunk_size=settings.manifest_chunk_size)
    say(f"[bold]7. manifest[/bold] {report.rows} devices -> {manifest_path}")
    with session_scope(settings) as session:
        rows = binding.account_batches(session=session, actor=actor_for(session=session, email=DEMO_ADMIN))
    say(f"[bold]8. batches of {DEMO_ACCOUNT}[/bold]")
    print_account_batches(rows, as_json=False)
    say(f"QR code of the reel: {out / (DEMO_BID + '-qr.png')}")
