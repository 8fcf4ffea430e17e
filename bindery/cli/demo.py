"""`bindery demo`: the main job of docs/getting-started.md on the embedded default (safe to run again)."""

from __future__ import annotations

import functools
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import select

from bindery import accounts, audit, binding
from bindery import db as database
from bindery.access import actor_for
from bindery.catalog import trust
from bindery.cli.catalog import print_account_batches
from bindery.cli.common import console
from bindery.clouds.config import add_cloud_api, change_url, get_cloud_api, secret_of
from bindery.db import session_scope
from bindery.errors import BinderyError, NotFound, one_line
from bindery.models.accounts import Account, User
from bindery.models.clouds import CloudApi
from bindery.reels.demo import write_demo_reel
from bindery.secrets import Secret
from bindery.settings import Settings, child_environment, get_settings

DEMO_BID = "DEMO-0001"
DEMO_DEVICES = 1000
DEMO_ACCOUNT = "Demo Account"
DEMO_ADMIN = "admin@demo.bindery.local"
DEMO_CLOUD_API = "demo-receiver"


PREFECT_STARTUP_SECONDS = 300


def prefect_ready(settings: Settings, say: Callable[[str], None]) -> None:
    """The demo's own readiness wait for Prefect's temporary server (Prefect's default of 20 s is too short
    on a loaded two-core machine); the flows then reuse that server. A server the user named is used as is."""
    if settings.prefect_api_url:
        return
    from prefect.server.api.server import SubprocessASGIServer

    say(f"[bold]0. Prefect[/bold] starting a temporary Prefect server (waiting up to {PREFECT_STARTUP_SECONDS // 60} "
        "minutes) ...")
    try:
        SubprocessASGIServer().start(timeout=PREFECT_STARTUP_SECONDS)
    except Exception as exc:  # Prefect says RuntimeError on a timeout, OSError when it cannot start at all
        raise BinderyError(f"Prefect's temporary server did not start ({exc.__class__.__name__}: {one_line(exc)}); "
                           "run `bindery demo` again, or start a server (`make server`) and set "
                           "PREFECT_API_URL") from None


def demo(here: Annotated[bool, typer.Option("--here", hidden=True, help="Run the steps in this process, in "
                                             "the environment as it is (what `bindery demo` starts).")] = False,
         ) -> None:
    """Dummy reel -> trust -> import -> account and admin -> bind by QR text -> manifest -> provision into a
    reference receiver it starts -> reconcile; the steps with flows run as Prefect flow runs."""
    settings = get_settings()
    if not here:  # the steps run in a process of their own, in the demo's environment (this one is left as is)
        sys.exit(subprocess.run([sys.executable, "-m", "bindery.cli", "demo", "--here"],
                                env=demo_environment(settings)).returncode)
    run_steps(settings)


def demo_environment(settings: Settings) -> dict[str, str]:
    """The demo's process: Prefect keeps its runs beside the demo's data (unless PREFECT_HOME is set), logs
    warnings only and sends no analytics (unless set otherwise), and the demo's receiver on loopback is an
    allowed target. Prefect reads these when it is first imported, so they are set before its process starts."""
    prefect_home = (settings.prefect_home or settings.home / "prefect").resolve()
    prefect_home.mkdir(parents=True, exist_ok=True)  # Prefect makes only the last level
    return child_environment(settings,
                             defaults={"PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"},
                             overrides={"PREFECT_HOME": str(prefect_home), "BINDERY_ALLOW_PRIVATE_TARGETS": "1"})


def run_steps(settings: Settings) -> None:
    say = functools.partial(console().print, markup=True)  # its own [bold] step names
    prefect_ready(settings, say)
    from bindery.flows.bind_batch import bind_batch
    from bindery.flows.export_manifest import export_manifest
    from bindery.flows.import_reel import import_reel
    from bindery.flows.provisioning import provision_batch
    from bindery.flows.reconcile import reconcile

    out = settings.home / "demo"
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
    imported = import_reel(path=str(reel))
    say(f"[bold]4. import[/bold] (flow run) batch {imported['bid']}: "
        + ("already imported" if imported["already_imported"] else f"{imported['imported']} devices"))
    with session_scope(settings) as session:
        if session.exec(select(Account).where(Account.name == DEMO_ACCOUNT)).first() is None:
            accounts.create_account(session=session, name=DEMO_ACCOUNT, actor=audit.operator_name())
            session.flush()
        if session.exec(select(User).where(User.email == DEMO_ADMIN)).first() is None:
            accounts.add_user(session=session, email=DEMO_ADMIN, account=DEMO_ACCOUNT, role="admin",
                              actor=audit.operator_name())
    say(f"[bold]5. account[/bold] {DEMO_ACCOUNT}, admin {DEMO_ADMIN}")
    bound = bind_batch(bid=binding.bid_from_qr(qr_text), user=DEMO_ADMIN)
    say(f"[bold]6. bind[/bold] (flow run) by QR text {qr_text}: "
        + ("already bound" if bound["already_bound"] else f"bound {bound['devices']} devices"))
    manifest_path = out / f"{DEMO_BID}-manifest.csv"
    written = export_manifest(bid=DEMO_BID, user=DEMO_ADMIN, out=str(manifest_path))
    say(f"[bold]7. manifest[/bold] (flow run) {written['rows']} devices -> {manifest_path}")
    with running_receiver(get_settings(), out) as receiver_url:
        state = provision_batch(bid=DEMO_BID, cloud_api=DEMO_CLOUD_API, user=DEMO_ADMIN, return_state=True)
        say(f"[bold]8. provision[/bold] (flow run) into {DEMO_CLOUD_API}, the reference receiver at "
            f"{receiver_url}: {state.message}")
        checked = reconcile(return_state=True)
        say(f"[bold]9. reconcile[/bold] (flow run): {checked.message}")
    with session_scope(settings) as session:
        rows = binding.account_batches(session=session, actor=actor_for(session=session, email=DEMO_ADMIN))
    say(f"[bold]10. batches of {DEMO_ACCOUNT}[/bold] (bound and provisioned counters)")
    print_account_batches(rows, as_json=False)
    password, password_file = demo_admin_password(settings, out)
    say(f"[bold]11. console[/bold] run `bindery web` (or `make web`), open {settings.public_url.rstrip('/')}/ and "
        f"log in as {DEMO_ADMIN} with password {password} (kept in {password_file}); the reel's QR code "
        f"opens {qr_text}")
    say(f"QR code of the reel: {out / (DEMO_BID + '-qr.png')}")
    say(f"Manifest File: {manifest_path}")
    say(f"Receiver's store: {out / 'receiver.db'}")
    say(f"Prefect UI with these flow runs: PREFECT_HOME={settings.prefect_home} make server, "
        "then open http://127.0.0.1:4200")


def demo_admin_password(settings: Settings, out: Path) -> tuple[str, Path]:
    """The demo admin's console password: made once, kept beside the demo's data (0600), set when the
    admin has none (a password the admin chose is left alone)."""
    from bindery.web.credentials import set_password

    path = out / "admin-password"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(12) + "\n")
        path.chmod(0o600)
    password = path.read_text().strip()
    with session_scope(settings) as session:
        admin = session.exec(select(User).where(User.email == DEMO_ADMIN)).one()
        if admin.password_hash is None:
            set_password(session=session, email=DEMO_ADMIN, password=password, actor=audit.operator_name())
    return password, path


@contextmanager
def running_receiver(settings: Settings, out: Path) -> Iterator[str]:
    """The reference receiver on a free loopback port, registered as the demo account's Product Cloud API
    (kind other, Basic auth with a generated password that is stored encrypted)."""
    with session_scope(settings) as session:
        actor = actor_for(session=session, email=DEMO_ADMIN)
        try:
            existing: CloudApi | None = get_cloud_api(session=session, actor=actor, name=DEMO_CLOUD_API)
        except NotFound:
            existing = None
        credentials = (secret_of(settings, existing) if existing else None) or f"bindery:{secrets.token_urlsafe(18)}"
    from bindery.receiver import ReceiverAuth, create_app  # FastAPI only when the demo runs
    from bindery.webserver import serve_in_thread

    app = create_app(ReceiverAuth(basic=credentials), out / "receiver.db")
    with serve_in_thread(app) as base:
        url = f"{base}/interop"
        with session_scope(settings) as session:
            actor = actor_for(session=session, email=DEMO_ADMIN)
            demo_settings = settings.model_copy(update={"allow_private_targets": True})
            if existing is None:
                add_cloud_api(session=session, settings=demo_settings, actor=actor, name=DEMO_CLOUD_API, kind="other",
                              options={"type": "private cloud", "url": url, "quota": "1000"},
                              secret=Secret(credentials))
            else:  # the receiver's port changes from run to run
                change_url(session=session, settings=demo_settings, actor=actor, name=DEMO_CLOUD_API, url=url)
        yield url
