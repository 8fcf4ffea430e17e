"""One Chromium pass over the Product Cloud API forms, without JavaScript: each kind chosen, added and
edited (checks off: these targets do not exist), an error shown next to its field with the values kept, and
removal confirmed."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.bindery.web.conftest import Console
from tests.bindery.web.test_browser import browser, log_in, shot  # noqa: F401  (fixture)
from tests.bindery.web.test_cloud_forms import ADDS
from tests.support.world import ADMIN

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
TITLES = {"aws": "AWS interop receiver (API Gateway)", "azure": "Azure interop receiver",
          "other": "Other interop receiver (HTTP Basic)", "aws-iot": "AWS IoT Core (direct)",
          "azure-iot-hub": "Azure IoT Hub (direct)", "azure-dps": "Azure IoT Hub Device Provisioning Service"}


def test_each_kind_is_added_edited_and_removed_in_chromium_without_script(console: Console, browser: Browser,  # noqa: F811
                                                                           tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{console.url}/provisioning")
    log_in(page, ADMIN)
    for kind, (fields, changes, shown) in ADDS.items():
        page.goto(f"{console.url}/provisioning")
        page.get_by_role("link", name="Add a Product Cloud API").click()
        page.get_by_label(TITLES[kind]).check()
        page.get_by_role("button", name="Next").click()
        form = page.locator("#cloud-api-form")
        expect(page.get_by_text(TITLES[kind]).first).to_be_visible()
        form.locator("#f-name").fill(f"web-{kind}")
        for name, value in fields.items():
            target = form.locator(f"#f-{name}")
            if target.evaluate("e => e.tagName") == "SELECT":
                target.select_option(value)
            else:
                target.fill(value)
        form.get_by_label("Check the target now").uncheck()
        if kind == "aws-iot":  # one refusal on the way: the error beside its field, the values kept
            form.locator("#f-region").fill("moon")
            form.get_by_role("button", name="Add").click()
            expect(page.locator("#error-region")).to_have_text(
                "Region: 'moon' is not an AWS region such as eu-central-1")
            expect(page.locator("#f-policy")).to_have_value("Fleet")
            shot(page, tmp_path, "add-api-error")
            page.locator("#f-region").fill(fields["region"])
            page.get_by_label("Check the target now").uncheck()
        page.locator("#cloud-api-form").get_by_role("button", name="Add").click()
        expect(page.get_by_role("status")).to_have_text(f"added Product Cloud API web-{kind} ({kind})")
        page.locator(f'tr[data-name="web-{kind}"]').get_by_role("link", name="Edit").click()
        page.locator("summary").click()
        for name, value in changes.items():
            page.locator(f"#f-{name}").fill(value)
        page.get_by_role("button", name="Save changes").click()
        expect(page.get_by_role("status")).to_have_text(f"updated Product Cloud API web-{kind}")
        expect(page.locator(f'tr[data-name="web-{kind}"]')).to_contain_text(shown[1])
    expect(page.locator("#cloud-apis")).to_contain_text("********")
    shot(page, tmp_path, "cloud-apis")
    page.locator('tr[data-name="web-aws"]').get_by_role("link", name="Remove").click()
    expect(page.get_by_role("heading", name="Remove the Product Cloud API web-aws?")).to_be_visible()
    page.get_by_role("button", name="Remove web-aws").click()
    expect(page.get_by_role("status")).to_have_text("removed Product Cloud API web-aws")
    expect(page.locator('tr[data-name="web-aws"]')).to_have_count(0)
    context.close()
