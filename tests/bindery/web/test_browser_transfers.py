"""A reel changing hands in the console, in headless Chromium: Acme's admin finds the transfer refused while
the batch is provisioned, splits off part of the reel, offers that part to Beta and reads the code once;
Beta's admin sees the offer on the batch list, pastes the code and owns the part; Acme then sees nothing of
it. On the way: errors beside their fields in the form's words, the batch on offer showing no actions that
would be refused, a withdrawn offer, the chain of custody and both audit logs, axe-core on each new page."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.bindery.web.conftest import Console
from tests.bindery.web.test_browser import browser, log_in, shot  # noqa: F401  (fixture)
from tests.support.pages import DESKTOP, PHONE, axe_source, serious_violations
from tests.support.world import ADMIN, OTHER

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def console_page(browser: Browser, url: str, who: str) -> tuple[BrowserContext, Page]:  # noqa: F811
    """A desktop session of ``who``; a CSP refusal or a script error fails the test at its end."""
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
    page = context.new_page()
    page.goto(f"{url}/login")
    log_in(page, who)
    expect(page.locator("#page-content h1")).to_contain_text("Product batches of")
    return context, page


def no_violations(page: Page) -> None:
    assert serious_violations(page, axe_source()) == [], page.url


def test_split_offer_accept_and_withdraw_in_the_console(console: Console, browser: Browser,  # noqa: F811
                                                         tmp_path: Path) -> None:
    cli, url = console.cli, console.url
    cli.ok("bind", "W001", "--user", ADMIN)
    cli.ok("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
           "--credentials", "bindery:pw-secret-value", "--url", f"{console.receiver}/interop", "--quota", "1000")
    cli.ok("provision", "W001", "--cloud-api", "lab", "--user", ADMIN)
    acme, page = console_page(browser, url, ADMIN)

    # A provisioned batch cannot change hands: the transfer page says why and what to do, and offers no form.
    page.goto(f"{url}/batches/W001")
    page.get_by_role("link", name="Transfer to another account…").click()
    expect(page.locator("#page-content h1")).to_have_text("Transfer W001 to another account")
    expect(page.locator("#held")).to_have_text(
        "W001 cannot change hands while its devices are in your Product Cloud: lab holds 12 devices.")
    expect(page.get_by_role("button", name="Offer W001")).to_have_count(0)
    no_violations(page)
    cli.ok("deprovision", "W001", "--cloud-api", "lab", "--forget", "--user", ADMIN)

    # Split off the first four devices; a bad count is said beside its field, the values kept.
    page.goto(f"{url}/batches/W001")
    page.get_by_role("link", name="Split…").click()
    expect(page.locator("#page-content h1")).to_have_text("Split W001 into two batches")
    no_violations(page)
    page.get_by_label("New BID").fill("W001-2")
    page.get_by_label("Number of devices to move").fill("four")
    page.get_by_role("button", name="Split W001").click()
    count = page.get_by_label("Number of devices to move")
    expect(count).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#error-count")).to_have_text("Number of devices to move: 'four' is not a whole number")
    expect(page.get_by_label("New BID")).to_have_value("W001-2")
    count.fill("4")
    page.get_by_role("button", name="Split W001").click()
    expect(page).to_have_url(f"{url}/batches/W001-2")
    expect(page.get_by_role("status")).to_have_text("split W001: 4 devices moved to W001-2, 8 left in W001")
    expect(page.locator("#summary .split-from")).to_have_text("W001")
    expect(page.locator("#summary .devices")).to_have_text("4")
    expect(page.locator("#devices tbody tr")).to_have_count(4)
    expect(page.locator("#custody tbody tr")).to_have_count(2)
    expect(page.locator("#custody tbody tr").nth(1)).to_contain_text("split off")

    # Offer the part to Beta: an unknown account is said beside its field; the code is shown once.
    page.get_by_role("link", name="Transfer to another account…").click()
    page.get_by_label("Receiving account").fill("Betta")
    page.get_by_role("button", name="Offer W001-2").click()
    expect(page.locator("#error-to")).to_have_text("Receiving account: unknown account 'Betta'")
    expect(page.get_by_label("Receiving account")).to_have_value("Betta")
    page.get_by_label("Receiving account").fill("Beta")
    page.get_by_label("Code expires after").select_option("1d")
    page.get_by_label("Note for the receiver").fill("order 4711, cut tape 1 of 3")
    page.get_by_role("button", name="Offer W001-2").click()
    expect(page.locator("#page-content h1")).to_have_text("W001-2 is offered to Beta")
    code = page.get_by_label("Transfer code").inner_text().strip()
    assert len(code.replace("-", "")) == 32, code
    no_violations(page)
    shot(page, tmp_path, "transfer-code")
    page.set_viewport_size(PHONE)  # the code is shown once: a narrow window must show it too
    expect(page.get_by_label("Transfer code")).to_be_visible()
    page.set_viewport_size(DESKTOP)

    # On offer: the batch page says so and offers only the withdrawal; the list shows it too.
    page.get_by_role("link", name="Back to the batch").click()
    offer = page.locator("#offer")
    expect(offer.get_by_role("heading")).to_have_text("On offer to Beta")
    expect(offer).to_contain_text("order 4711, cut tape 1 of 3")
    expect(page.get_by_role("button", name="Provision Now")).to_have_count(0)
    expect(page.get_by_role("link", name="Split…")).to_have_count(0)
    page.goto(f"{url}/")
    row = page.locator('tr[data-bid="W001-2"]')
    expect(row.locator(".on-offer")).to_have_text("on offer to Beta")
    expect(row.locator(".bound-at")).to_contain_text(f"split off by {ADMIN}")
    expect(page.locator('tr[data-bid="W001"] .bound-at')).to_contain_text(f"bound by {ADMIN}")
    expect(row.locator(".actions")).to_have_text("See the offer")
    expect(page.locator('#offers-made tr[data-made="W001-2"] .state')).to_have_text("on offer")
    page.goto(f"{url}/batches/W001-2")  # left open while Beta accepts

    # Beta's admin sees the offer, pastes a wrong code, then the right one, and owns the part.
    beta, other = console_page(browser, url, OTHER)
    offers = other.locator("#offers")
    expect(offers.locator('tr[data-offer="W001-2"]')).to_contain_text("Acme")
    expect(offers.locator('tr[data-offer="W001-2"]')).to_contain_text("order 4711, cut tape 1 of 3")
    no_violations(other)
    shot(other, tmp_path, "transfer-offers")
    other.get_by_label("Transfer code").fill("AAAA-" + code[5:])
    other.get_by_role("button", name="Accept").click()
    expect(other.locator("#accept-error")).to_have_text(
        "Transfer code: unknown transfer code: check it with the account that offered the batch")
    expect(other.get_by_label("Transfer code")).to_have_value("AAAA-" + code[5:])  # kept, to correct it
    expect(other.get_by_label("Transfer code")).to_have_attribute("aria-invalid", "true")
    other.get_by_label("Transfer code").fill(code.lower())
    other.get_by_role("button", name="Accept").click()
    expect(other).to_have_url(f"{url}/batches/W001-2")
    expect(other.get_by_role("status")).to_have_text("batch W001-2 (4 devices) from Acme is yours now")
    custody = other.locator("#custody tbody tr")
    expect(custody).to_have_count(3)
    expect(custody.nth(2)).to_contain_text("Beta")
    expect(custody.nth(2)).to_contain_text("transferred")
    expect(custody.nth(2)).to_contain_text(ADMIN)
    expect(custody.nth(2)).to_contain_text(OTHER)
    expect(custody.nth(2).locator("td").nth(4)).to_have_text("now")
    expect(custody.nth(1).locator("td").nth(4)).not_to_have_text("now")  # the split entry ended with the accept
    other.goto(f"{url}/")
    expect(other.locator("#offers")).to_have_count(0)
    expect(other.locator('tr[data-bid="W001-2"]')).to_have_count(1)
    expect(other.locator('tr[data-bid="W001-2"] .bound-at')).to_contain_text(f"accepted by {OTHER}")
    other.goto(f"{url}/audit")
    expect(other.locator("main")).to_contain_text("accepted batch W001-2 (4 devices) from Acme into Beta")

    # Acme no longer sees the part: the page it had open says so in place, then "unknown BID" with what
    # became of it; its list holds it only among the offers it made.
    expect(page.locator("#live")).to_contain_text("unknown BID W001-2: your account transferred it to Beta "
                                                  f"({OTHER} accepted it on", timeout=20_000)
    answer = page.goto(f"{url}/batches/W001-2")
    assert answer is not None and answer.status == 404
    expect(page.locator("main")).to_contain_text("your account transferred it to Beta")
    page.goto(f"{url}/")
    expect(page.locator('#batches tr[data-bid="W001-2"]')).to_have_count(0)
    expect(page.locator('#offers-made tr[data-made="W001-2"] .state')).to_have_text(f"accepted by {OTHER}")
    page.goto(f"{url}/audit")
    expect(page.locator("main")).to_contain_text("offered batch W001-2 (4 devices) from Acme to Beta")
    expect(page.locator("main")).to_contain_text("split 4 devices of batch W001 into W001-2 (8 left in W001)")
    expect(page.locator("main")).to_contain_text("made batch W001-2 of 4 devices split off batch W001")

    # An offer withdrawn: its code stops working, and Beta's list no longer shows it.
    page.goto(f"{url}/batches/W001/transfer")
    page.get_by_label("Receiving account").fill("Beta")
    page.get_by_role("button", name="Offer W001").click()
    second = page.get_by_label("Transfer code").inner_text().strip()
    page.goto(f"{url}/batches/W001")
    page.get_by_role("button", name="Withdraw the offer").click()
    expect(page.get_by_role("status")).to_have_text("the offer of W001 is withdrawn: its code no longer works")
    expect(page.get_by_role("button", name="Provision Now")).to_be_visible()
    other.goto(f"{url}/")
    expect(other.locator("#offers")).to_have_count(0)
    expect(other.get_by_label("Transfer code")).to_be_hidden()  # folded away while nothing is on offer
    beta.close()

    # On a phone (the code arrived by mail): the desktop note leads to the accept page, which works there.
    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, bypass_csp=True)
    mobile = phone.new_page()
    mobile.goto(f"{url}/login")
    log_in(mobile, OTHER)
    expect(mobile.locator("#desktop-note")).to_contain_text(
        "on a phone the console offers binding and accepting transferred batches only")
    mobile.locator("#desktop-note").get_by_role("link", name="Accept a transferred batch").click()
    expect(mobile.locator("#page-content h1")).to_have_text("Accept a transferred batch")
    no_violations(mobile)
    mobile.get_by_label("Transfer code").fill(second)
    mobile.get_by_role("button", name="Accept").click()
    expect(mobile.locator("#accept-error")).to_have_text(
        f"Transfer code: the offer of batch W001 was withdrawn by {ADMIN}: ask them for a new offer")
    field = mobile.get_by_label("Transfer code")
    expect(field).to_be_visible()
    box = field.bounding_box()
    assert box is not None and box["x"] + box["width"] <= PHONE["width"], box  # the whole field on the phone
    third = cli.ok("batch", "transfer", "W001", "--to", "Beta", "--user", ADMIN).out
    field.fill(third.split("(shown once): ")[1].split()[0])
    mobile.get_by_role("button", name="Accept").click()
    expect(mobile.get_by_role("status")).to_have_text("batch W001 (8 devices) from Acme is yours now")
    expect(mobile.locator("#desktop-note")).to_contain_text("Open this page on a desktop")
    phone.close()
    acme.close()
