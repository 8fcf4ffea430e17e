"""The docs' console screenshots (`make screenshots`; not collected by `make test`): one seeded console in
Chromium, every shot on a desk (1280x900) and a phone (390x844), written to docs/screenshots/ (or
BINDERY_SCREENSHOT_DIR). Each shot first checks that the page shows what the docs say it shows."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.bindery.web.conftest import Console
from tests.bindery.web.test_browser import browser, log_in  # noqa: F401  (fixture)
from tests.bindery.web.test_browser_history import squat
from tests.support.gate import slow_receiver
from tests.support.pages import DESKTOP, PHONE, ROOT
from tests.support.world import ADMIN, MEMBER

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
OUT = Path(os.environ.get("BINDERY_SCREENSHOT_DIR") or ROOT / "docs" / "screenshots")
LIVE = 20_000  # ms


@pytest.fixture
def contexts(console: Console, browser: Browser) -> Iterator[dict[str, BrowserContext]]:  # noqa: F811
    """The admin on a desk and on a phone."""
    made = {}
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        phone = viewport == PHONE
        made[name] = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone,
                                         device_scale_factor=2 if phone else 1)
        page = made[name].new_page()
        page.goto(f"{console.url}/login")
        log_in(page, ADMIN)
        expect(page.get_by_role("button", name="Log out")).to_be_visible()
        page.close()
    yield made
    for context in made.values():
        context.close()


def shoot(contexts: dict[str, BrowserContext], url: str, name: str, check_desktop: str) -> dict[str, Page]:
    """The page at ``url`` on both, saved as NAME.png (desk) and NAME-phone.png; the desk shows
    ``check_desktop`` (a heading), the phone its content or the desktop note."""
    pages = {}
    for kind, context in contexts.items():
        page = context.new_page()
        page.goto(url)
        if kind == "desktop":
            expect(page.get_by_role("heading", name=check_desktop, exact=True).first).to_be_visible()
        else:
            expect(page.locator("main h1:visible").first).to_be_visible()
        page.screenshot(path=str(OUT / f"{name}{'-phone' if kind == 'phone' else ''}.png"), full_page=True)
        pages[kind] = page
    return pages


def close(pages: dict[str, Page]) -> None:
    for page in pages.values():
        page.close()


def test_screenshots(console: Console, contexts: dict[str, BrowserContext], browser: Browser,  # noqa: F811
                     tmp_path: Path) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    cli, url = console.cli, console.url
    for bid in ("W001", "W002"):
        cli.ok("bind", bid, "--user", MEMBER)
    cli.ok("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
           "--credentials", "bindery:pw-secret-value", "--url", f"{console.receiver}/interop", "--quota", "1000")
    cli.ok("provision", "W002", "--cloud-api", "lab", "--user", ADMIN)

    # A Provision Now into a slow Product Cloud, caught with one chunk of three through.
    with slow_receiver(tmp_path) as slow:
        cli.ok("cloud-api", "add", "fleet-eu", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
               "--credentials", "bindery:pw-secret-value", "--url", f"{slow.url}/interop", "--quota", "1000",
               "--no-check")
        page = contexts["desktop"].new_page()
        page.goto(f"{url}/batches/W001")
        page.locator("#actions").get_by_label("Provision into").select_option("fleet-eu")
        page.locator("#actions").get_by_role("button", name="Provision Now").click()
        slow.gate.arrived(3)
        slow.gate.let_through(1)
        expect(page.locator('#live .running[data-api="fleet-eu"] .done')).to_have_text("4 of 12 provisioned",
                                                                                         timeout=LIVE)
        close(shoot(contexts, f"{url}/batches/W001", "batch-running", "Batch W001"))
        listing = shoot(contexts, f"{url}/", "batch-list-running", "Product batches of Acme")
        expect(listing["desktop"].locator('tr[data-bid="W001"] .running')).to_be_visible()
        close(listing)
        slow.gate.let_through(2)
        expect(page.locator('#live .outcome[data-api="fleet-eu"] h3')).to_have_text(
            "Provisioning into fleet-eu completed", timeout=LIVE)
        page.close()

    # A run that fails for two devices (their certificates are registered differently at the target).
    squat(console, tmp_path)
    assert cli("provision", "W001", "--cloud-api", "lab", "--user", ADMIN).code == 1
    failed = shoot(contexts, f"{url}/batches/W001?status=failed", "batch-failed", "Batch W001")
    expect(failed["desktop"].locator('#targets tr[data-api="lab"] .failed')).to_contain_text("2")
    close(failed)
    close(shoot(contexts, f"{url}/", "batch-list", "Product batches of Acme"))

    # Adding a Product Cloud API: the APIs, the kind chooser, one kind's fields, its errors beside them.
    close(shoot(contexts, f"{url}/provisioning", "provisioning", "Provisioning"))
    close(shoot(contexts, f"{url}/provisioning/cloud-apis/new", "add-api", "Add a Product Cloud API"))
    adding = shoot(contexts, f"{url}/provisioning/cloud-apis/new?kind=other", "add-api-form",
                   "Add a Product Cloud API")
    form = adding["desktop"].locator("#cloud-api-form")
    form.locator("#f-name").fill("lab-2")
    form.locator("#f-url").fill("ftp://10.0.0.7/interop")
    form.get_by_role("button", name="Add").click()
    expect(form.locator(".field-error").first).to_be_visible()
    adding["desktop"].screenshot(path=str(OUT / "add-api-errors.png"), full_page=True)
    close(adding)

    # The reel's QR code on a phone: log in to bind, then the bind form with the BID filled in.
    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = phone.new_page()
    page.goto(f"{url}/cloud-id?groupId=W003")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in to bind W003")
    page.screenshot(path=str(OUT / "login-to-bind-phone.png"), full_page=True)
    log_in(page, MEMBER)
    expect(page.get_by_label("Product Batch ID (BID)")).to_have_value("W003")
    page.screenshot(path=str(OUT / "bind-page-phone.png"), full_page=True)
    page.get_by_label("Product Batch ID (BID)").fill("W009")
    page.get_by_role("button", name="Add").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown BID W009")
    page.screenshot(path=str(OUT / "bind-unknown-phone.png"), full_page=True)
    phone.close()
    desk = contexts["desktop"].new_page()
    desk.goto(f"{url}/bind?bid=W003")
    expect(desk.get_by_label("Product Batch ID (BID)")).to_have_value("W003")
    desk.screenshot(path=str(OUT / "bind-page.png"), full_page=True)
