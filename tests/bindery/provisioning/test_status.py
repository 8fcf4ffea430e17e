"""A device whose retries are used up is failed, with its error, on every surface: the records, the
counters, the "failed" filter, the API, the CLI, the console's batch page and the run's outcome."""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command

from bindery import db as database
from bindery.provisioning.status import Reason, failure_summary
from bindery.settings import Settings
from tests.bindery.web.conftest import Console, console  # noqa: F401  (fixture)
from tests.bindery.web.test_pages import login
from tests.support import db
from tests.support.world import ADMIN, MEMBER

DEVICES = [f"w1-{i:03d}" for i in range(12)]  # the console fixture's W001


def closed_port_url() -> str:
    """A loopback port nothing listens on: every connection is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/interop"


def cell(row: str, name: str) -> str:
    """The text of a table row's cell of class ``name`` (its markup dropped)."""
    found = re.search(rf'<td class="{name}\b[^"]*">(.*?)</td>', row, re.S)
    assert found, row
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


@pytest.fixture
def down(console: Console, monkeypatch: pytest.MonkeyPatch) -> str:  # noqa: F811
    """W001 bound, and a Product Cloud API "down" whose receiver is a closed port; returns its URL."""
    monkeypatch.setenv("BINDERY_PROVISION_RETRIES", "2")
    monkeypatch.setenv("BINDERY_RETRY_BASE_SECONDS", "0.01")
    url = closed_port_url()
    console.cli.ok("bind", "W001", "--user", MEMBER)
    console.cli.ok("cloud-api", "add", "down", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
                   "--credentials", "bindery:pw", "--url", url, "--quota", "1000", "--no-check")
    return url


def test_a_target_that_is_down_fails_every_device_everywhere(console: Console, down: str,  # noqa: F811
                                                             settings: Settings) -> None:
    cli = console.cli
    error = f"connection to {down} failed (ConnectError)"
    run = cli("provision", "W001", "--cloud-api", "down", "--user", ADMIN)
    assert run.code == 1
    assert "batch W001 -> down: 0 of 12 devices provisioned (0 already present), 12 failed" in run.out
    assert f"failed: 12 devices (w1-000, w1-001, … w1-011): {error}" in run.err, "one line for one cause"
    assert run.err.count(error) == 2, run.err  # that line and the closing one naming the reason
    assert f"12 devices of batch W001 are not provisioned into down (12 devices failed: {error})" in run.err

    stored = db.rows(settings.resolved_database_url,
                     "SELECT status, attempts, error_class, last_error, COUNT(*) FROM provisioning_record "
                     "GROUP BY status, attempts, error_class, last_error")
    assert stored == [("failed", 3, "transient", error, 12)], "retries used up: failed, with the error, 3 tries"

    rows = cli.ok("devices", "W001", "--user", MEMBER, "--json").json
    assert [(r["device_id"], r["status"], r["last_error"], r["error_class"], r["attempts"])  # type: ignore[index]
            for r in rows] == [(d, "failed", error, "transient", 3) for d in DEVICES]  # type: ignore[union-attr]
    assert len(cli.ok("devices", "W001", "--status", "failed", "--user", MEMBER, "--json").json) == 12  # type: ignore[arg-type]
    assert cli.ok("devices", "W001", "--status", "pending", "--user", MEMBER, "--json").json == []
    shown = cli.ok("batch", "show", "W001", "--user", MEMBER, "--json").json
    assert shown["failed"] == {"down": 12} and shown["provisioned"] == {}  # type: ignore[index]
    run_row = cli.ok("runs", "W001", "--user", MEMBER, "--json").json[0]  # type: ignore[index]
    assert run_row["status"] == "failed"  # type: ignore[index]
    assert run_row["message"] == f"0 of 12 devices provisioned into down; 12 devices failed: {error}"  # type: ignore[index]
    assert run_row["counts"]["failed"] == 12 and run_row["counts"]["not_tried"] == 0  # type: ignore[index]

    api = console.client(MEMBER)
    failed = api.get("/api/batches/W001/devices", params={"status": "failed"}).json()["devices"]
    assert [(d["device_id"], d["status"], d["last_error"]) for d in failed] == [(d, "failed", error) for d in DEVICES]
    assert api.get("/api/batches/W001/devices", params={"status": "pending"}).json()["devices"] == []
    assert api.get("/api/batches/W001").json()["failed"] == {"down": 12}

    page = login(console, MEMBER)
    batch = page.get("/batches/W001")
    assert batch.status_code == 200
    counters = re.search(r'<tr data-api="down">.*?</tr>', batch.text, re.S)
    assert counters, batch.text[:3000]
    assert (cell(counters.group(0), "failed"), cell(counters.group(0), "pending")) == ("12", "0")
    filtered = page.get("/batches/W001", params={"status": "failed"}).text
    listed = re.findall(r'<tr data-device="([^"]+)" data-status="failed">(.*?)</tr>', filtered, re.S)
    assert [device for device, _ in listed] == DEVICES and all(error in row for _, row in listed)
    assert f"12 devices failed: {error}" in filtered, "the run's outcome names the reason"
    assert 'data-status="pending"' not in page.get("/batches/W001").text


def test_a_run_with_nothing_to_do_says_so(console: Console) -> None:  # noqa: F811
    cli = console.cli
    cli.ok("bind", "W002", "--user", MEMBER)
    cli.ok("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
           "--credentials", "bindery:pw-secret-value", "--url", f"{console.receiver}/interop", "--quota", "1000")
    first = cli.ok("provision", "W002", "--cloud-api", "lab", "--user", ADMIN)
    assert "3 of 3 devices provisioned (0 already present), 0 failed" in first.out
    again = cli.ok("provision", "W002", "--cloud-api", "lab", "--user", ADMIN)
    assert "batch W002 -> lab: nothing to do: all 3 devices already provisioned in lab" in again.out
    assert "3 of 3" not in again.out
    latest = cli.ok("runs", "W002", "--user", ADMIN, "--json").json[0]  # type: ignore[index]
    assert latest["status"] == "completed"  # type: ignore[index]
    assert latest["message"] == "nothing to do: all 3 devices already provisioned in lab"  # type: ignore[index]


def test_the_migration_settles_what_ended_runs_left_pending(console: Console, down: str,  # noqa: F811
                                                            settings: Settings) -> None:
    """Records an older Bindery left pending with an error become failed where no live lease holds their
    batch and target; the ones a live run holds, and the ones never tried, stay pending."""
    cli = console.cli
    cli.ok("bind", "W002", "--user", MEMBER)
    cli.ok("bind", "W003", "--user", MEMBER)
    for bid in ("W001", "W002"):
        assert cli("provision", bid, "--cloud-api", "down", "--user", ADMIN).code == 1
    url = settings.resolved_database_url
    db.execute(url, "UPDATE provisioning_record SET status = 'pending'")  # what the older Bindery left
    ids = dict(db.rows(url, "SELECT bid, id FROM batch"))  # type: ignore[arg-type]
    api_id = db.scalar(url, "SELECT id FROM cloud_api WHERE name = 'down'")
    never_tried = db.scalar(url, "SELECT id FROM device WHERE device_id = 'w3-000'")
    db.execute(url, "INSERT INTO provisioning_record (device_id, batch_id, cloud_api_id, status, attempts) "
               "VALUES (:device, :batch, :api, 'pending', 0)", device=never_tried, batch=ids["W003"], api=api_id)
    with database.get_engine(settings).begin() as connection:  # a live run on W002
        from sqlalchemy import insert

        from bindery.models.provisioning import RunLease

        connection.execute(insert(RunLease).values(batch_id=ids["W002"], cloud_api_id=api_id, holder="live",
                                                   expires_at=datetime.now(UTC) + timedelta(minutes=5),
                                                   created_at=datetime.now(UTC)))
    config = database.alembic_config(url)
    command.downgrade(config, "0011")
    command.upgrade(config, "head")
    states = db.rows(url, "SELECT b.bid, r.status, COUNT(*) FROM provisioning_record r JOIN batch b "
                          "ON b.id = r.batch_id GROUP BY b.bid, r.status ORDER BY b.bid")
    assert states == [("W001", "failed", 12), ("W002", "pending", 3), ("W003", "pending", 1)]


def test_failure_summary_names_the_reason() -> None:
    assert failure_summary(0, []) == ""
    assert failure_summary(1, [Reason("refused", 1)]) == "1 device failed: refused"
    assert failure_summary(3, [Reason("refused", 2), Reason("bad cert", 1)]) == (
        "3 devices failed: refused (2 devices); bad cert (1 device)")
    many = [Reason(f"e{i}", 5 - i) for i in range(4)]
    assert failure_summary(14, many) == (
        "14 devices failed: e0 (5 devices); e1 (4 devices); e2 (3 devices) and other errors")

