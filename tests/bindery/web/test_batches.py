"""The batch list and the batch page over HTTP: runs started outside the console show with their progress
and outcome, a failed last run is flagged until a later run succeeds, the batch page is the hub (never
provisioned, search, position, filters kept, roles), Provision Now with nothing to do, confirmed
deprovisioning, readable audit events, the drift chart and one time format."""

from __future__ import annotations

import re
import socket
import threading
from contextlib import closing
from pathlib import Path

import pytest

from bindery.crypto.certs import pem_of
from bindery.csvsafe import neutralise
from bindery.provisioning import service
from bindery.settings import Settings, get_settings
from tests.bindery.web.conftest import Console
from tests.bindery.web.test_pages import csrf, login
from tests.support import db
from tests.support.certs import Chain, write_csv
from tests.support.gate import slow_receiver
from tests.support.world import ADMIN, MEMBER

TIME = re.compile(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ">'
                  r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [A-Z+\-0-9]+</time>')
DASH = "\N{EN DASH}"
ON_SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # page rendering: one backend is enough
POLL = {"HX-Request": "true"}  # what htmx sends with its polls


def add_lab(console: Console, name: str = "lab", url: str | None = None) -> None:
    console.cli.ok("cloud-api", "add", name, "--user", ADMIN, "--kind", "other", "--type", "private cloud",
                   "--credentials", "bindery:pw-secret-value", "--url", url or f"{console.receiver}/interop",
                   "--quota", "1000", "--no-check")


def closed_port() -> int:
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_run_started_outside_the_console_shows_with_progress_then_outcome(console: Console, tmp_path: Path,
                                                                            settings: Settings) -> None:
    console.cli.ok("bind", "W001", "--user", ADMIN)
    with slow_receiver(tmp_path) as slow:
        add_lab(console, "slow", f"{slow.url}/interop")
        run = threading.Thread(target=service.provision_batch, kwargs={
            "settings": get_settings(), "user": ADMIN, "bid": "W001", "cloud_api": "slow"})  # as `bindery provision`
        run.start()
        slow.gate.arrived(3)
        slow.gate.let_through(1)
        with closing(login(console, MEMBER)) as member:
            listed = member.get("/live/batches", headers=POLL).text
            assert 'data-running' in listed and re.search(r'class="done">\d+ of 12</span>', listed), listed[:3000]
            live = member.get("/batches/W001/live", headers=POLL).text
            assert f'by <span class="started-by">{ADMIN}</span>' in live and '<span class="via">cli</span>' in live
            assert 'hx-trigger="every 2s"' in live, "polls fast while a run is open"
            run_id = re.search(r'class="running card-wide" data-run="(\d+)"', live)
            assert run_id, live[:3000]
            assert "Retry failed" not in live and "csrf_token" not in live, "members get no actions"
            whole = member.get("/batches/W001").text
            assert '<noscript><meta http-equiv="refresh" content="10"></noscript>' in whole, "live without script too"
            assert '<script src="/static/htmx.min.js" defer></script>' in whole and "<script>" not in whole
            assert member.get("/static/htmx.min.js").text.startswith("var htmx=function()")
            slow.gate.let_through(2)
            run.join(60)
            ended = member.get("/batches/W001/live", params={"watch": run_id.group(1)}, headers=POLL).text
            assert "Provisioning into slow completed" in ended and "12 of 12 devices provisioned into slow" in ended
            assert 'hx-swap-oob="true"' in ended and ended.count('data-status="provisioned"') == 12
            assert 'hx-trigger="every 5s"' in ended, "idle again"
            assert "data-running" not in member.get("/live/batches", headers=POLL).text


def test_a_failed_last_run_is_flagged_until_a_later_run_succeeds(console: Console, monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    monkeypatch.setenv("BINDERY_PROVISION_RETRIES", "0")
    monkeypatch.setenv("BINDERY_RETRY_BASE_SECONDS", "0")
    cli = console.cli
    cli.ok("bind", "W002", "--user", ADMIN)
    add_lab(console, "lab", f"http://127.0.0.1:{closed_port()}/interop")
    assert cli("provision", "W002", "--cloud-api", "lab", "--user", ADMIN).code == 1
    with closing(login(console, ADMIN)) as admin:
        row = re.search(r'<tr data-bid="W002".*?</tr>', admin.get("/").text, re.S)
        assert row and "data-last-failed" in row.group(0) and "last provisioning into lab failed" in row.group(0)
        assert 'data-failed-api="lab"' in row.group(0) and "lab: 3 failed" in row.group(0)
        page = admin.get("/batches/W002").text
        assert re.search(r'<tr data-api="lab">.*?data-status="failed"', page, re.S)
        cli.ok("cloud-api", "update", "lab", "--user", ADMIN, "--url", f"{console.receiver}/interop", "--no-check")
        cli.ok("provision", "W002", "--cloud-api", "lab", "--user", ADMIN)
        assert "data-last-failed" not in admin.get("/").text
        assert re.search(r'<tr data-api="lab">.*?data-status="completed"', admin.get("/batches/W002").text, re.S)


@ON_SQLITE
def test_the_batch_list_searches_by_bid_and_has_one_action_a_row(console: Console) -> None:
    for bid in ("W001", "W002", "W003"):
        console.cli.ok("bind", bid, "--user", ADMIN)
    add_lab(console)
    console.cli.ok("provision", "W003", "--cloud-api", "lab", "--user", ADMIN)  # sets no target
    with closing(login(console, ADMIN)) as admin:
        admin.post("/batches/W001/target", data={"csrf_token": csrf(admin.get("/")), "cloud_api": "lab"})
        page = admin.get("/", params={"q": "w00"}).text
        assert page.count("<tr data-bid=") == 3 and page.count("<select") == 0, "no dropdown in the list"
        w001 = re.search(r'<tr data-bid="W001".*?</tr>', page, re.S).group(0)  # type: ignore[union-attr]
        assert w001.count("<button") == 1 and 'aria-label="Provision W001 into lab now"' in w001
        w002 = re.search(r'<tr data-bid="W002".*?</tr>', page, re.S).group(0)  # type: ignore[union-attr]
        assert "<button" not in w002 and "Choose a target" in w002
        found = admin.get("/", params={"q": "002"}).text
        assert found.count("<tr data-bid=") == 1 and 'value="002"' in found
        none = admin.get("/", params={"q": "nope"}).text
        assert "No BID contains “nope”" in none and "Show all 3 batches" in none
        assert TIME.search(page), "bound at in the one time format"
    with closing(login(console, MEMBER)) as member:
        page = member.get("/").text
        assert page.count("<tr data-bid=") == 3 and "Provision Now" not in page


def import_batch(console: Console, tmp_path: Path, bid: str, count: int) -> None:
    chain = Chain("big")
    console.cli.ok("trust", "add", *chain.write_ca(tmp_path / "big-ca"))
    rows = [(neutralise(f"b-{i:03d}"), bid, pem_of(chain.device(f"cn-b-{i:03d}"))) for i in reversed(range(count))]
    console.cli.ok("reel", "import", write_csv(tmp_path / f"{bid}.csv", rows))


def test_the_batch_page_is_the_hub(console: Console, tmp_path: Path, settings: Settings) -> None:
    import_batch(console, tmp_path, "B060", 60)
    console.cli.ok("bind", "B060", "--user", ADMIN)
    add_lab(console)
    with closing(login(console, ADMIN)) as admin:
        page = admin.get("/batches/B060").text
        assert "None of the 60 devices of B060 is provisioned yet" in page and "No devices here" not in page
        assert page.count('data-status="none"') == 50 and "not provisioned yet" in page
        ids = re.findall(r'<tr data-device="([^"]+)"', page)
        assert ids == [f"b-{i:03d}" for i in range(50)], "in id order"
        assert f"1{DASH}50 of 60" in page and 'rel="next"' in page and 'rel="prev"' not in page
        for action in ("Provision Now", "Change target", "Download manifest"):
            assert action in page
        for fact in ("Vendor", "Model", "Devices", "Bound", "Target", ADMIN):
            assert fact in page
        second = admin.get("/batches/B060", params={"start": 50}).text
        assert f"51{DASH}60 of 60" in second and 'rel="prev"' in second and 'rel="next"' not in second
        found = admin.get("/batches/B060", params={"q": "B-05"}).text
        assert re.findall(r'<tr data-device="([^"]+)"', found) == [f"b-{i:03d}" for i in range(50, 60)]
        assert 'value="B-05"' in found and f"1{DASH}10 of 10" in found
        console.cli.ok("provision", "B060", "--cloud-api", "lab", "--user", ADMIN)
        kept = admin.get("/batches/B060", params={"status": "failed", "cloud_api": "lab", "q": "b-0"}).text
        assert "No device ID of B060 contains “b-0” with these filters" in kept and "Show all devices" in kept
        assert '<option value="failed" selected>' in kept and '<option value="lab" selected>' in kept
        assert 'value="b-0"' in kept
        assert re.search(r'<td class="provisioned num"><a href="/batches/B060\?cloud_api=lab&amp;status=provisioned"',
                         admin.get("/batches/B060").text)
        assert "Deprovision…" in admin.get("/batches/B060").text
        assert TIME.search(admin.get("/batches/B060").text)
    with closing(login(console, MEMBER)) as member:
        page = member.get("/batches/B060").text
        assert page.count('data-status="provisioned"') == 50
        for admin_only in ("Provision Now", "Change target", "Download manifest", "Deprovision", "Retry failed"):
            assert admin_only not in page


@ON_SQLITE
def test_provision_now_with_nothing_to_do_says_so(console: Console, settings: Settings) -> None:
    console.cli.ok("bind", "W002", "--user", ADMIN)
    add_lab(console)
    console.cli.ok("provision", "W002", "--cloud-api", "lab", "--user", ADMIN)
    runs = db.scalar(settings.resolved_database_url, "SELECT COUNT(*) FROM run")
    with closing(login(console, ADMIN)) as admin:
        said = admin.post("/batches/W002/provision", follow_redirects=True, data={
            "csrf_token": csrf(admin.get("/batches/W002")), "cloud_api": "lab", "back_to": "batch"})
        assert "nothing to do: all 3 devices of W002 are already provisioned into lab" in said.text
        assert str(said.url).endswith("/batches/W002")
    assert db.scalar(settings.resolved_database_url, "SELECT COUNT(*) FROM run") == runs, "no run was started"


@ON_SQLITE
def test_deprovision_asks_for_the_bid_first(console: Console, settings: Settings) -> None:
    console.cli.ok("bind", "W002", "--user", ADMIN)
    add_lab(console)
    console.cli.ok("provision", "W002", "--cloud-api", "lab", "--user", ADMIN)
    removed = "SELECT COUNT(*) FROM provisioning_record WHERE status = 'removed'"
    with closing(login(console, ADMIN)) as admin:
        asked = admin.get("/batches/W002/deprovision", params={"cloud_api": "lab"})
        assert asked.status_code == 200 and "Type the BID to confirm" in asked.text and "3 devices" in asked.text
        token = csrf(asked)
        wrong = admin.post("/batches/W002/deprovision", follow_redirects=True,
                           data={"csrf_token": token, "cloud_api": "lab", "forget": "on", "confirm": "W001"})
        assert "Type the BID W002 to confirm: nothing was removed" in wrong.text
        assert db.scalar(settings.resolved_database_url, removed) == 0
        forged = admin.post("/batches/W002/deprovision", data={"csrf_token": "x", "cloud_api": "lab", "forget": "on",
                                                               "confirm": "W002"})
        assert forged.status_code == 403
        done = admin.post("/batches/W002/deprovision", follow_redirects=True,
                          data={"csrf_token": token, "cloud_api": "lab", "forget": "on", "confirm": "W002"})
        assert "removing the devices of W002 from lab started" in done.text
        for _ in range(600):  # the job runs in the web process: wait for its records
            if db.scalar(settings.resolved_database_url, removed) == 3:
                break
            threading.Event().wait(0.1)
        assert db.scalar(settings.resolved_database_url, removed) == 3
    with closing(login(console, MEMBER)) as member:
        assert member.get("/batches/W002/deprovision", params={"cloud_api": "lab"}).status_code == 403


@ON_SQLITE
def test_audit_events_read_as_sentences_without_server_paths(console: Console) -> None:
    console.cli.ok("bind", "W001", "--user", ADMIN)
    with closing(login(console, ADMIN)) as admin:
        assert admin.get("/batches/W001/manifest.csv").status_code == 200
        page = admin.get("/audit").text.split('<table id="audit">')[1]
        assert "exported the Manifest File of W001 (12 devices)" in page
        assert "bound batch W001 (12 devices) to Acme" in page and "logged in to the console" in page
        assert "manifest-" not in page and "/tmp" not in page and "{&#34;" not in page and '{"' not in page
        assert TIME.search(page)
