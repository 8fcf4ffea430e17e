"""The console in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright): an admin on a
desktop, a member on a phone through the reel's QR link. Screenshots land in the test's folder and, when
BINDERY_SCREENSHOT_DIR is set, there too (docs/screenshots/ come from that)."""

from __future__ import annotations

import csv
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.bindery.web.conftest import DEVICES, PASSWORD, Console
from tests.support.world import ADMIN, MEMBER

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():  # no skip: .ci/run installs Debian's chromium
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


def shot(page: Page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("BINDERY_SCREENSHOT_DIR"):
        shutil.copy(path, Path(os.environ["BINDERY_SCREENSHOT_DIR"]) / path.name)
    assert path.stat().st_size > 5000


def log_in(page: Page, email: str) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_admin_on_a_desktop_adds_an_api_binds_provisions_and_downloads(console: Console, browser: Browser,
                                                                         tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.goto(f"{console.url}/provisioning")
    log_in(page, ADMIN)
    expect(page.get_by_role("heading", name="Provisioning")).to_be_visible()
    page.get_by_role("link", name="Add a Product Cloud API").click()
    page.get_by_label("Other interop receiver (HTTP Basic)").check()
    page.get_by_role("button", name="Next").click()
    form = page.locator("#cloud-api-form")
    form.get_by_label("Name", exact=False).first.fill("lab")
    form.get_by_label("Cloud type").select_option("private cloud")
    form.get_by_label("Receiver URL").fill(f"{console.receiver}/interop")
    form.get_by_label("Credentials").fill("bindery:pw-secret-value")
    form.get_by_role("button", name="Add").click()
    expect(page.get_by_role("status")).to_have_text("added Product Cloud API lab (other)")
    expect(page.locator("#cloud-apis")).not_to_contain_text("pw-secret-value")

    page.get_by_role("link", name="Bind a product batch").click()
    page.get_by_label("Product Batch ID (BID)").fill("W001")
    page.get_by_label("Product Cloud API").select_option("lab")
    page.get_by_role("button", name="Add").click()
    expect(page.get_by_role("status")).to_contain_text("bound batch W001 (12 devices)")
    expect(page.get_by_role("status")).to_contain_text("provisioning into lab started")

    page.get_by_role("link", name="Batches").click()
    counter = page.locator('tr[data-bid="W001"] .counter[data-api="lab"]')
    deadline = time.monotonic() + 60
    while not (counter.count() and counter.inner_text() == "lab: 12"):
        assert time.monotonic() < deadline, page.content()[:2000]
        time.sleep(0.5)
        page.reload()
    expect(page.locator('tr[data-bid="W001"] .devices')).to_have_text("12")
    shot(page, tmp_path, "batch-list")

    page.locator('tr[data-bid="W001"]').get_by_role("link", name="W001").click()  # the batch page has its actions
    with page.expect_download() as download:
        page.get_by_role("link", name="Download manifest").click()
    saved = tmp_path / "manifest.csv"
    download.value.save_as(saved)
    with saved.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["device_id", "group_id", "certificate"]
    assert sorted(r[0] for r in rows[1:]) == DEVICES["W001"] and {r[1] for r in rows[1:]} == {"W001"}
    assert all(r[2].startswith("-----BEGIN CERTIFICATE-----") for r in rows[1:])
    context.close()


def test_member_on_a_phone_binds_from_the_qr_link(console: Console, browser: Browser, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                  device_scale_factor=2)
    page = context.new_page()
    page.goto(f"{console.url}/cloud-id?groupId=W002")  # what the reel's QR code opens
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    log_in(page, MEMBER)
    bid = page.get_by_label("Product Batch ID (BID)")
    expect(bid).to_have_value("W002")
    expect(page.locator('select[name="cloud_api"]')).to_have_count(0)
    expect(page.get_by_role("link", name="Batches")).to_be_hidden()
    expect(page.locator(".mobile-note")).to_be_visible()
    shot(page, tmp_path, "bind-page-phone")
    page.get_by_role("button", name="Add").click()
    expect(page.get_by_role("status")).to_have_text("bound batch W002 (3 devices) to Acme")
    page.goto(f"{console.url}/")
    expect(page.locator("#batches")).to_be_hidden()
    expect(page.locator(".mobile-note")).to_be_visible()
    context.close()
