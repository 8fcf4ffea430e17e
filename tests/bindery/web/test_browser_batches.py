"""Work in progress in headless Chromium: an admin presses Provision Now into a slow receiver (one the test
lets through a chunk at a time) and watches the batch page and the batch list move without a reload,
then sees the outcome and the device list as it ended."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.bindery.web.conftest import Console
from tests.bindery.web.test_browser import browser, log_in, shot  # noqa: F401  (fixture)
from tests.support.gate import slow_receiver
from tests.support.world import ADMIN

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
LIVE = 20_000  # ms: a poll every 2 s, on a loaded machine


def test_a_running_provisioning_shows_its_progress_then_its_outcome(console: Console, browser: Browser,  # noqa: F811
                                                                     tmp_path: Path) -> None:
    cli = console.cli
    cli.ok("bind", "W001", "--user", ADMIN)
    with slow_receiver(tmp_path) as slow:
        cli.ok("cloud-api", "add", "slow", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
               "--credentials", "bindery:pw-secret-value", "--url", f"{slow.url}/interop", "--quota", "1000",
               "--no-check")
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        complaints: list[str] = []
        page.on("console", lambda message: complaints.append(message.text)
                if "Content Security Policy" in message.text else None)
        page.on("pageerror", lambda error: complaints.append(str(error)))
        page.goto(f"{console.url}/batches/W001")
        log_in(page, ADMIN)
        expect(page.locator("#never-provisioned")).to_contain_text("None of the 12 devices of W001 is provisioned yet")
        expect(page.locator('#devices tr[data-status="none"]')).to_have_count(12)
        page.locator("#actions").get_by_label("Provision into").select_option("slow")
        page.locator("#actions").get_by_role("button", name="Provision Now").click()
        expect(page.get_by_role("status").first).to_have_text(
            "provisioning W001 into slow started: 12 of 12 devices to do")
        page.evaluate("() => { window.stillTheSamePage = true; }")

        slow.gate.arrived(3)  # three chunks of four, all waiting at the receiver
        running = page.locator('#live .running[data-api="slow"]')
        expect(running.locator(".done")).to_have_text("0 of 12 provisioned", timeout=LIVE)
        expect(running).to_contain_text(f"by {ADMIN} via console")
        slow.gate.let_through(1)
        expect(running.locator(".done")).to_have_text("4 of 12 provisioned", timeout=LIVE)
        expect(running.locator(".rate")).to_contain_text("devices/s")
        expect(running.locator("progress")).to_have_attribute("value", "4")
        shot(page, tmp_path, "batch-running")

        listing = page.context.new_page()
        listing.goto(f"{console.url}/")
        row = listing.locator('tr[data-bid="W001"]')
        expect(row.locator('.running[data-api="slow"] .done')).to_have_text("4 of 12")
        expect(row.locator(".actions")).to_have_text("running")
        shot(listing, tmp_path, "batch-list-running")

        slow.gate.let_through(2)
        outcome = page.locator('#live .outcome[data-api="slow"]')
        expect(outcome.locator("h3")).to_have_text("Provisioning into slow completed", timeout=LIVE)
        expect(outcome.locator(".message")).to_have_text("12 of 12 devices provisioned into slow")
        expect(page.locator("#live .running")).to_have_count(0)
        expect(page.locator('#targets tr[data-api="slow"] .provisioned')).to_have_text("12")
        expect(page.locator('#devices tr[data-status="provisioned"]')).to_have_count(12)  # the list, swapped in
        expect(page.locator("#runs tbody tr").first.locator(".status")).to_have_text("completed")
        assert page.evaluate("() => window.stillTheSamePage") is True, "the page was reloaded"
        assert complaints == [], "no script or style refused by the CSP, no script error"
        expect(row.locator(".running")).to_have_count(0, timeout=LIVE)  # the list moved on by itself too
        expect(row.locator('.counter[data-api="slow"]')).to_have_text("slow: 12")
        shot(page, tmp_path, "batch-after-run")
        page.context.close()
