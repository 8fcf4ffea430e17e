"""What the CLI prints for an operator: --help by workflow, one line per cause, pages with the next
command, full flow-run ids with their Prefect link, one time format, the demo reel's next steps."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlmodel import select

from bindery.cli.common import folded_line, iso_time
from bindery.settings import get_settings
from tests.conftest import Cli
from tests.support.world import ADMIN, MEMBER, make_world

DEVICES = [f"o-{i:02d}" for i in range(7)]


def test_help_groups_the_commands_by_workflow_in_its_order(cli: Cli) -> None:
    shown = cli.ok("--help").out
    panels = re.findall(r"╭─ ([^─]+?) ─", shown)
    assert panels == ["Options", "Catalog: reels and their trust anchors", "Binding: batches to accounts",
                      "Clouds: Product Cloud APIs", "Provisioning", "Operations", "Console"]
    provisioning = shown[shown.index("╭─ Provisioning"):shown.index("╭─ Operations")]
    assert all(f"│ {name} " in provisioning for name in ("provision", "devices", "deprovision", "reconcile"))
    assert "│ web " in shown[shown.index("╭─ Console"):]


def test_times_are_iso_8601_with_their_zone() -> None:
    assert iso_time(datetime(2026, 12, 2, 18, 16, 1, 500, tzinfo=UTC)) == "2026-12-02T18:16:01Z"
    assert iso_time("2026-12-02T19:16:01+01:00") == "2026-12-02T18:16:01Z"
    assert iso_time(datetime(2026, 12, 2, 20, 0, tzinfo=timezone(timedelta(hours=2)))) == "2026-12-02T18:00:00Z"
    assert iso_time(None) == ""


def test_a_cause_met_many_times_is_one_line() -> None:
    assert folded_line("failed", ["d-1"], "boom") == "failed: d-1: boom"
    assert folded_line("failed", ["a", "b", "c"], "boom") == "failed: 3 devices (a, b, c): boom"
    assert folded_line("failed", [f"d{i}" for i in range(200)], "boom") == "failed: 200 devices (d0, d1, … d199): boom"


def test_a_reel_whose_ca_is_not_trusted_says_so_once_with_the_fix(cli: Cli, tmp_path: Path) -> None:
    demo = cli.ok("reel", "demo", "--bid", "UNTRUSTED", "--devices", "30", "--out", tmp_path / "demo")
    reel = re.search(r"^reel: (.+)$", demo.out, re.M)
    assert reel
    refused = cli("reel", "import", reel[1])
    assert refused.code == 2
    lines = [line for line in refused.err.splitlines() if "untrusted chain" in line]
    assert len(lines) == 1, refused.err
    assert re.search(r": 30 entries \([0-9A-F]+, [0-9A-F]+, … [0-9A-F]+\): untrusted chain: issuer '.+' is not a "
                     r"trusted CA — fix: trust the vendor's CA first: bindery trust add", lines[0]), lines[0]
    assert "reel rejected, 30 of 30 entries are invalid; nothing was imported" in refused.err


def test_reel_demo_links_its_qr_code_to_the_given_console_and_says_what_next(cli: Cli, tmp_path: Path) -> None:
    made = cli.ok("reel", "demo", "--bid", "QR-1", "--devices", "2", "--out", tmp_path / "demo",
                  "--base-url", "https://bindery.factory.example:8443/")
    assert "-> https://bindery.factory.example:8443/bind?bid=QR-1" in made.out
    steps = made.out[made.out.index("next: "):]
    assert "bindery trust add" in steps and "demo-root-ca.pem" in steps
    assert "bindery reel import" in steps and "bindery bind QR-1" in steps
    qr = cli.ok("reel", "demo", "--bid", "QR-2", "--devices", "1", "--out", tmp_path / "default")
    assert f"-> {get_settings().public_url}/bind?bid=QR-2" in qr.out
    wrong = cli("reel", "demo", "--bid", "QR-3", "--devices", "1", "--out", tmp_path / "x", "--base-url", "bindery")
    assert wrong.code == 2 and "--base-url: 'bindery' is not an http:// or https:// address" in wrong.err
    assert not (tmp_path / "x").exists(), "nothing written"


@pytest.fixture
def world(cli: Cli, tmp_path: Path) -> Cli:
    make_world(cli, tmp_path, {"O001": DEVICES})
    cli.ok("bind", "O001", "--user", MEMBER)
    return cli


def test_devices_come_a_page_at_a_time_with_the_next_command(world: Cli) -> None:
    from bindery.db import session_scope
    from bindery.models.catalog import Batch
    from bindery.models.clouds import CloudApi
    from bindery.provisioning import records

    world.ok("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
             "--credentials", "bindery:pw", "--url", "https://receiver.example/interop", "--no-check")
    with session_scope(get_settings()) as session:
        batch = session.exec(select(Batch).where(Batch.bid == "O001")).one()
        api = session.exec(select(CloudApi).where(CloudApi.name == "lab")).one()
        assert batch.id is not None and api.id is not None
        records.ensure_records(session=session, batch_id=batch.id, api_id=api.id)
    seen: list[str] = []
    first = world.ok("devices", "O001", "--limit", "3", "--user", MEMBER, "--json")
    command = None
    while True:
        page = first if command is None else world.ok(*command[1:], "--user", MEMBER)
        seen += [row["device_id"] for row in page.json]  # type: ignore[union-attr, index]
        hint = re.search(r"^(\d+) devices shown; next page: (bindery devices .+)$", page.err, re.M)
        if hint is None:
            break
        assert hint[1] == "3" and "--limit 3" in hint[2] and "--json" in hint[2]
        command = hint[2].split()
    assert seen == DEVICES, "every device once, in order, over three pages"
    table = world.ok("devices", "O001", "--user", MEMBER)
    assert "next page" not in table.err and all(device in table.out for device in DEVICES)
    wrong = world("devices", "O001", "--limit", "0", "--user", MEMBER)
    assert wrong.code == 2 and "--limit: 0 is not from 1 to 1000" in wrong.err
    forged = world("devices", "O001", "--after", "x.y", "--user", MEMBER)
    assert forged.code == 2 and "--after: 'x.y' is not a cursor this listing gave" in forged.err


def test_runs_show_full_flow_run_ids_linked_to_the_prefect_ui(world: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from bindery import runs
    from bindery.db import session_scope
    from bindery.models.catalog import Batch
    from bindery.models.clouds import CloudApi

    world.ok("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
             "--credentials", "bindery:pw", "--url", "https://receiver.example/interop", "--no-check")
    flow_run = str(uuid.uuid4())
    with session_scope(get_settings()) as session:
        batch = session.exec(select(Batch).where(Batch.bid == "O001")).one()
        api = session.exec(select(CloudApi).where(CloudApi.name == "lab")).one()
        assert batch.id is not None and api.id is not None
        runs.begin(session=session, kind=runs.PROVISION, batch_id=batch.id, bid="O001", api_id=api.id,
                   api_name="lab", started_by=ADMIN, origin=runs.Origin("prefect-api", flow_run, None))
    unlinked = world.ok("runs", "--user", MEMBER)
    assert flow_run in unlinked.out and "PREFECT_UI_URL or PREFECT_API_URL" in unlinked.out
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", unlinked.out), unlinked.out
    monkeypatch.setenv("PREFECT_API_URL", "http://prefect.example:4200/api")
    linked = world.ok("runs", "--user", MEMBER).out
    assert f"http://prefect.example:4200/runs/flow-run/{flow_run}" in linked
    monkeypatch.setenv("PREFECT_UI_URL", "https://prefect-ui.example")
    assert f"https://prefect-ui.example/runs/flow-run/{flow_run}" in world.ok("runs", "--user", MEMBER).out


def test_a_refused_bind_or_accept_is_one_line_on_stderr_with_no_empty_line_before_it(cli: Cli,
                                                                                      tmp_path: Path) -> None:
    """Both hold a progress bar for the provisioning they may start; piped, it printed nothing but a newline."""
    make_world(cli, tmp_path, {"W001": DEVICES})
    for args, said in [(["bind", "NOPE", "--user", ADMIN], "error: unknown BID NOPE\n"),
                       (["batch", "accept", "AAAA-BBBB", "--user", ADMIN],
                        "error: unknown transfer code: check it with the account that offered the batch\n")]:
        refused = cli(*args)
        assert (refused.code, refused.err) == (2, said), args
    bound = cli.ok("bind", "W001", "--user", ADMIN)
    assert (bound.out, bound.err) == (f"bound batch W001: {len(DEVICES)} devices\n", "")
