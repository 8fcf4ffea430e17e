"""Every page of the console in Chromium at 1280x900 and 390x844, over seeded data (a bound, partly
provisioned batch with a failed run, a provisioned one, a reconcile report): each shows its main content, or
on a phone the note to open it on a desktop, and axe-core finds no serious or critical violation. The pages
are the app's own GET routes, so a page added later is checked too (or fails here until it has a seed)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from bindery.settings import get_settings
from bindery.web.app import create_app
from tests.bindery.web.conftest import Console
from tests.bindery.web.test_browser import browser, log_in  # noqa: F401  (fixture)
from tests.bindery.web.test_browser_history import squat
from tests.support.pages import (
    DESKTOP,
    PHONE,
    axe_source,
    fill,
    page_routes,
    serious_violations,
    shown_problems,
)
from tests.support.world import ADMIN, MEMBER

ON_SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
LOGGED_OUT = {"/login"}  # shown to a visitor without a session
DOWNLOADS = {"/batches/{bid}/manifest.csv", "/favicon.ico"}  # GET routes that answer a file, not a page
FRAGMENTS = {"/live/batches", "/batches/{bid}/live"}  # parts of a page htmx fetches: checked inside their page
QUERIES = {"/batches/{bid}/deprovision": "?cloud_api={cloud_api}"}  # pages that ask about one target
SEED_BID, SEED_API = "W001", "lab"


@dataclass
class Seeded:
    console: Console
    values: dict[str, str]


@pytest.fixture
def seeded(console: Console, tmp_path: Path) -> Seeded:
    """W001 bound and provisioned into lab but for two devices (its run failed), W002 provisioned, reconciled."""
    cli = console.cli
    cli.ok("bind", "W001", "--user", MEMBER)
    cli.ok("bind", "W002", "--user", MEMBER)
    cli.ok("cloud-api", "add", SEED_API, "--user", ADMIN, "--kind", "other", "--type", "private cloud",
           "--credentials", "bindery:pw-secret-value", "--url", f"{console.receiver}/interop", "--quota", "1000")
    cli.ok("provision", "W002", "--cloud-api", SEED_API, "--user", ADMIN)
    squat(console, tmp_path)
    assert cli("provision", SEED_BID, "--cloud-api", SEED_API, "--user", ADMIN).code == 1
    cli("reconcile")
    runs = cli.ok("runs", SEED_BID, "--kind", "provision", "--user", ADMIN, "--json").json
    failed = next(r for r in runs if r["status"] == "failed")  # type: ignore[union-attr, index]
    values = {"bid": SEED_BID, "name": SEED_API, "cloud_api": SEED_API, "run_id": str(failed["id"]),
              "flow_run_id": str(failed["flow_run_id"])}
    return Seeded(console, values)


@contextmanager
def logged_in(browser: Browser, url: str, viewport: dict[str, int]) -> Iterator[BrowserContext]:  # noqa: F811
    """A context of the admin's (who sees every page), axe-core allowed in despite the console's CSP."""
    context = browser.new_context(viewport=viewport, bypass_csp=True, is_mobile=viewport == PHONE,
                                  has_touch=viewport == PHONE)
    page = context.new_page()
    page.goto(f"{url}/login")
    log_in(page, ADMIN)
    expect(page.locator("#batches, h1")).not_to_have_count(0)
    page.close()
    yield context
    context.close()


@ON_SQLITE
def test_every_page_shows_its_content_or_the_desktop_note_and_passes_axe(seeded: Seeded,
                                                                         browser: Browser) -> None:  # noqa: F811
    url, source = seeded.console.url, axe_source()
    routes = page_routes(create_app(get_settings()))
    assert {"/", "/bind", "/batches/{bid}", "/login"} <= set(routes), routes
    pages = [r for r in routes if r not in DOWNLOADS | FRAGMENTS]
    problems: list[str] = []
    for viewport in (DESKTOP, PHONE):
        phone = viewport == PHONE
        with logged_in(browser, url, viewport) as context:
            anonymous = browser.new_context(viewport=viewport, bypass_csp=True)
            for route in [*pages, "/batches/NOPE"]:  # the last: the error page
                page = (anonymous if route in LOGGED_OUT else context).new_page()
                answer = page.goto(url + fill(route + QUERIES.get(route, ""), seeded.values))
                status = answer.status if answer else 0
                where = f"{route} at {viewport['width']}px"
                if status != (404 if route == "/batches/NOPE" else 200):
                    problems.append(f"{where}: HTTP {status}")
                problems += [f"{where}: {p}" for p in shown_problems(page, phone)]
                problems += [f"{where}: {v}" for v in serious_violations(page, source)]
                page.close()
            anonymous.close()
            for route in DOWNLOADS | FRAGMENTS:  # left out of the pages: each must really be a file or a part
                got = context.request.get(url + fill(route, seeded.values),
                                          headers={"HX-Request": "true"} if route in FRAGMENTS else None)
                html = "text/html" in got.headers["content-type"]
                if got.status != 200 or html != (route in FRAGMENTS) or "<main" in got.text():
                    problems.append(f"{route}: HTTP {got.status} {got.headers['content-type']}, not a "
                                    + ("page's part" if route in FRAGMENTS else "file"))
    assert not problems, "\n".join(problems)


@ON_SQLITE
def test_a_phone_from_a_qr_link_logs_in_to_bind_keeps_an_unknown_bid_and_is_sent_to_a_desktop(
        console: Console, browser: Browser) -> None:  # noqa: F811
    console.cli.ok("bind", SEED_BID, "--user", MEMBER)
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(f"{console.url}/cloud-id?groupId=W002")  # what the reel's QR code opens
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in to bind W002")
    log_in(page, MEMBER)
    expect(page).to_have_url(f"{console.url}/cloud-id?groupId=W002")
    field = page.get_by_label("Product Batch ID (BID)")
    expect(field).to_have_value("W002")
    field.fill("W999")
    page.get_by_role("button", name="Add").click()
    expect(page.get_by_role("alert")).to_have_text(
        "unknown BID W999: check the BID against the reel's label (or scan its QR code again); if it is right, "
        "ask an admin to import the reel's file first")
    expect(field).to_have_value("W999")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_accessible_description(page.get_by_role("alert").inner_text())

    page.goto(f"{console.url}/batches/{SEED_BID}")
    note = page.locator("#desktop-note")
    expect(note).to_be_visible()
    expect(note.get_by_role("heading", level=1)).to_have_text(f"Batch {SEED_BID}")
    expect(note).to_contain_text("Open this page on a desktop")
    expect(page.locator("#devices")).to_be_hidden()
    note.get_by_role("link", name="Bind a product batch").click()
    expect(field).to_have_value("")
    expect(page.locator("#desktop-note")).to_have_count(0)
    context.close()


@ON_SQLITE
def test_nav_marks_the_current_page_and_the_skip_link_leads_to_main(console: Console,
                                                                    browser: Browser) -> None:  # noqa: F811
    console.cli.ok("bind", SEED_BID, "--user", MEMBER)
    with logged_in(browser, console.url, DESKTOP) as context:
        page = context.new_page()
        page.goto(f"{console.url}/reconcile")
        nav = page.get_by_role("navigation", name="Main")
        expect(nav.locator("[aria-current]")).to_have_count(1)
        expect(nav.get_by_role("link", name="Reconciliation")).to_have_attribute("aria-current", "page")
        page.goto(f"{console.url}/batches/{SEED_BID}")
        expect(nav.locator("[aria-current]")).to_have_count(1)
        expect(nav.get_by_role("link", name="Batches")).to_have_attribute("aria-current", "true")
        page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Skip to main content")
        expect(skip).to_be_focused()
        expect(skip).to_be_in_viewport()
        page.keyboard.press("Enter")
        expect(page.locator("main")).to_be_focused()


def test_the_axe_check_finds_what_it_must(browser: Browser) -> None:  # noqa: F811
    """The check above can fail: a control without a label and a page without content are found."""
    context = browser.new_context(viewport=PHONE, bypass_csp=True)
    page = context.new_page()
    page.set_content('<html lang="en"><head><title>t</title></head><body><main><div id="page-content"><h1>Form</h1>'
                     '<input type="text"></div></main></body></html>')
    assert [v.split(" ")[0] for v in serious_violations(page, axe_source())] == ["label"]
    assert shown_problems(page, phone=True) == ["no visible content under the heading: 'Form'"]
    context.close()
