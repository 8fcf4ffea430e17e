"""The history pages in headless Chromium: an admin finds the failed devices of a batch (failed first, with
their errors), retries just them, sees both runs with their starters, the last drift report and the audit
log; a member sees the batch but not the audit log."""

from __future__ import annotations

import base64
import sqlite3
import time
from pathlib import Path

import boto3
import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from bindery.crypto.certs import pem_of
from bindery.settings import Settings
from tests.bindery.web.conftest import DEVICES, Console
from tests.bindery.web.test_browser import browser, log_in, shot  # noqa: F401  (fixture)
from tests.support.aws import delete_behind_bindery, moto, moto_server  # noqa: F401  (fixtures)
from tests.support.certs import Chain
from tests.support.world import ADMIN, MEMBER

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
SQUATTED = ["w1-003", "w1-007"]


def squat(console: Console, tmp_path: Path) -> None:
    """Another certificate already registered under two refs: those devices fail permanently."""
    certs = [{"ref": ref, "cert": base64.b64encode(pem_of(Chain("squat").device(ref)).encode()).decode()}
             for ref in SQUATTED]
    httpx.post(f"{console.receiver}/interop", auth=("bindery", "pw-secret-value"),
               json={"action": "provision", "certs": certs}).raise_for_status()


def unsquat(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "recv.db") as receiver_db:
        receiver_db.execute(f"DELETE FROM device WHERE ref IN ({', '.join('?' * len(SQUATTED))})", SQUATTED)


def reload_until(page: Page, locator: str, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while page.locator(locator).inner_text().strip() != text:
        assert time.monotonic() < deadline, page.content()[:3000]
        time.sleep(0.5)
        page.reload()


def test_failed_devices_retry_runs_drift_and_audit(console: Console, browser: Browser,  # noqa: F811
                                                   settings: Settings, moto: str, tmp_path: Path) -> None:  # noqa: F811
    cli = console.cli
    cli.ok("bind", "W001", "--user", MEMBER)
    cli.ok("bind", "W002", "--user", MEMBER)
    cli.ok("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
           "--credentials", "bindery:pw-secret-value", "--url", f"{console.receiver}/interop", "--quota", "1000")
    squat(console, tmp_path)
    assert cli("provision", "W001", "--cloud-api", "lab", "--user", ADMIN).code == 1

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{console.url}/")
    log_in(page, ADMIN)
    page.locator('tr[data-bid="W001"]').get_by_role("link", name="W001").click()
    expect(page.get_by_role("heading", name="Batch W001")).to_be_visible()
    expect(page.locator('#targets tr[data-api="lab"] .failed')).to_have_text("2")
    expect(page.locator('#targets tr[data-api="lab"] .provisioned')).to_have_text("10")
    rows = page.locator("#devices tbody tr")
    expect(rows).to_have_count(12)
    assert [rows.nth(i).get_attribute("data-device") for i in range(12)] == sorted(DEVICES["W001"]), "in id order"
    expect(page.locator('#devices tr[data-device="w1-003"] .last-error')).to_have_text(
        "ref or certificate already registered differently")
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(2)
    shot(page, tmp_path, "batch-failed-devices")

    unsquat(tmp_path)
    page.get_by_role("button", name="Retry failed devices in lab").click()
    expect(page.get_by_role("status")).to_have_text("retrying the devices of W001 not yet in lab")
    reload_until(page, '#targets tr[data-api="lab"] .provisioned', "12")
    expect(page.locator('#targets tr[data-api="lab"] .failed')).to_have_text("0")
    expect(page.get_by_role("button", name="Retry failed devices in lab")).to_have_count(0)
    reload_until(page, "#runs tbody tr:first-child .status", "completed")
    history = page.locator("#runs tbody tr")
    expect(history).to_have_count(2)
    assert [(history.nth(i).locator(".started-by").inner_text(), history.nth(i).locator(".via").inner_text(),
             history.nth(i).locator(".status").inner_text()) for i in range(2)] == [
        (ADMIN, "console", "completed"), (ADMIN, "cli", "failed")]
    devices = {d["device_id"]: d for d in cli.ok("devices", "W001", "--user", ADMIN, "--json").json}  # type: ignore[union-attr, index]
    assert {d: row["attempts"] for d, row in devices.items() if row["attempts"] != 1} == dict.fromkeys(SQUATTED, 2), \
        "Retry failed provisioned only the failed devices"
    shot(page, tmp_path, "batch-after-retry")

    iot = boto3.client("iot", endpoint_url=moto, region_name="us-east-1")
    iot.create_policy(policyName="Fleet", policyDocument='{"Version": "2012-10-17", "Statement": []}')
    cli.ok("cloud-api", "add", "iot", "--user", ADMIN, "--kind", "aws-iot", "--region", "us-east-1",
           "--policy", "Fleet", "--endpoint-url", moto, "--quota", "1000")
    cli.ok("provision", "W002", "--cloud-api", "iot", "--user", ADMIN)
    assert cli("reconcile").code == 0
    delete_behind_bindery(iot, settings, "w2-001")
    assert cli("reconcile").code == 3
    page.get_by_role("link", name="Reconciliation").click()
    report = page.locator('article.report[data-bid="W002"][data-api="iot"]')
    expect(report.locator(".finding")).to_have_text("drift: 1 missing")
    expect(report.locator("dd.missing")).to_have_text("w2-001")
    expect(report.locator(".trend-figures")).to_have_text("0 1")
    expect(page.locator('article.report[data-bid="W001"] .finding')).to_contain_text("records only")
    shot(page, tmp_path, "reconciliation")

    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("BID").fill("W001")
    page.get_by_role("button", name="Filter").click()
    actions = page.locator("#audit tbody tr")
    assert actions.nth(0).get_attribute("data-action") == "provision.finish"
    assert {actions.nth(i).get_attribute("data-action") for i in range(actions.count())} >= {
        "provision.start", "provision.finish", "batch.bind"}
    shot(page, tmp_path, "audit-log")
    context.close()

    member = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    member.goto(f"{console.url}/batches/W001")
    log_in(member, MEMBER)
    expect(member.locator("#devices tbody tr")).to_have_count(12)
    expect(member.get_by_role("button", name="Retry failed devices in lab")).to_have_count(0)
    expect(member.get_by_role("link", name="Audit log")).to_have_count(0)
    answer = member.goto(f"{console.url}/audit")
    assert answer is not None and answer.status == 403
    member.context.close()
