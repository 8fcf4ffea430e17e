"""The console's Product Cloud API forms over real HTTP: one add flow (kind chooser, then that kind's fields
only), errors next to their fields in the fields' words with the values kept (never a secret), the edit
form, removal confirmed, and a refusal that names what still uses the API."""

from __future__ import annotations

import html
import re
from contextlib import closing

import httpx
import pytest

from bindery.clouds.kinds import specs
from bindery.settings import Settings
from tests.bindery.web.conftest import Console
from tests.bindery.web.test_pages import csrf, login
from tests.support import db
from tests.support.world import ADMIN

HUB = "HostName=acme.azure-devices.net;SharedAccessKeyName=registryReadWrite;SharedAccessKey=c2VjcmV0LWh1Yi1rZXk="
DPS = "HostName=acme.azure-devices-provisioning.net;SharedAccessKeyName=provisioningserviceowner;" \
      "SharedAccessKey=c2VjcmV0LWRwcy1rZXk="
# What each kind's add form is filled with (checks off: these targets do not exist), then one edit.
ADDS = {
    "aws": ({"account_id": "123456789012", "gateway_id": "abc123defg", "region": "eu-central-1", "stage": "prod"},
            {"stage": "live", "pace": "0.8"}, ("Stage", "live")),
    "azure": ({"interop_url": "https://receiver.example.net/interop",
               "subscription_id": "0f8fad5b-d9cb-469f-a165-70867728950e"},
              {"interop_url": "https://other.example.net/interop", "timeout": "45"},
              ("Interop URL", "https://other.example.net/interop")),
    "other": ({"type": "private cloud", "url": "https://receiver.example.com/interop", "credentials": "u:pw-one"},
              {"chunk_size": "50", "credentials": "u:pw-two"}, ("Chunk size (devices)", "50")),
    "aws-iot": ({"region": "eu-west-1", "policy": "Fleet", "thing_prefix": "acme-"},
                {"thing_group": "line-7", "quota": "25"}, ("Thing group", "line-7")),
    "azure-dps": ({"connection_string": DPS, "iot_hub": "acme-eu.azure-devices.net", "allocation": "hashed"},
                  {"iot_hub": "acme-us.azure-devices.net", "timeout": "20"}, ("IoT hub", "acme-us.azure-devices.net")),
    "azure-iot-hub": ({"connection_string": HUB}, {"quota": "3", "pace": "0.5", "chunk_size": "20", "timeout": "9"},
                      ("Timeout (seconds)", "9.0")),
}


def field_error(page: httpx.Response, name: str) -> str:
    found = re.search(rf'<span class="field-error" id="error-{name}">([^<]*)</span>', page.text)
    return html.unescape(found.group(1)) if found else ""


def value_of(page: httpx.Response, name: str) -> str | None:
    """An input's value, or a select's chosen option."""
    found = re.search(rf'name="{name}" type="[a-z]+"[^>]*value="([^"]*)"', page.text, re.S)
    if found:
        return html.unescape(found.group(1))
    select = re.search(rf'<select id="f-{name}" name="{name}".*?</select>', page.text, re.S)
    chosen = re.search(r'<option value="([^"]*)" selected>', select.group(0)) if select else None
    return html.unescape(chosen.group(1)) if chosen else None


def test_every_kind_is_added_and_edited_through_its_own_form(console: Console, settings: Settings) -> None:
    assert set(ADDS) == {spec.kind for spec in specs()}, "a new kind gets its row here"
    with closing(login(console, ADMIN)) as admin:
        chooser = admin.get("/provisioning/cloud-apis/new")
        assert all(f'value="{spec.kind}"' in chooser.text for spec in specs())
        assert 'name="type"' not in chooser.text, "the chooser shows no kind's fields"
        for kind, (fields, changes, shown) in ADDS.items():
            form = admin.get("/provisioning/cloud-apis/new", params={"kind": kind})
            spec = next(s for s in specs() if s.kind == kind)
            others = {f.name for s in specs() if s.kind != kind for f in s.fields if not f.advanced} - {
                f.name for f in spec.fields}
            assert not [n for n in others if f'name="{n}"' in form.text], f"{kind}: only its own fields"
            for field in spec.fields:
                text = html.unescape(form.text)
                assert f">{field.label}" in text and field.help in text, (kind, field.name)
            for name in ("quota", "pace", "chunk_size", "timeout"):
                assert f'name="{name}"' in form.text
            name = f"api-{kind}"
            added = admin.post("/provisioning/cloud-apis", follow_redirects=True,
                               data={"csrf_token": csrf(form), "kind": kind, "name": name, **fields})
            assert f"added Product Cloud API {name} ({kind})" in added.text, added.text[-1500:]
            edit = admin.get(f"/provisioning/cloud-apis/{name}/edit")
            for key, value in fields.items():
                if key != spec.secret:
                    assert value_of(edit, key) == value, (kind, key)
            if spec.secret:
                assert value_of(edit, spec.secret) == "" and fields[spec.secret] not in edit.text
            saved = admin.post(f"/provisioning/cloud-apis/{name}/edit", follow_redirects=True,
                               data={"csrf_token": csrf(edit), "kind": kind, **changes})
            assert f"updated Product Cloud API {name}" in saved.text, saved.text[-1500:]
            row = re.search(rf'<tr data-name="{name}">(.*?)</tr>', saved.text, re.S)
            assert row and f"<dt>{shown[0]}</dt><dd>{shown[1]}</dd>" in row.group(1), (kind, row)
            if spec.secret:
                assert "<dd>********</dd>" in row.group(1)
                assert fields[spec.secret] not in saved.text and changes.get(spec.secret, "\x00") not in saved.text
        listed = admin.get("/provisioning")
        cells = "".join(re.findall(r'<td class="settings">(.*?)</td>', listed.text, re.S))
        assert "quota=" not in cells and "<dt>Raised quota (per second)</dt><dd>25.0</dd>" in cells, "no raw dump"
    with console.client(ADMIN) as api:
        hub = api.get("/api/cloud-apis/api-azure-iot-hub").json()
        assert (hub["quota"], hub["pace"], hub["chunk_size"], hub["timeout"]) == ("3.0", "0.5", "20", "9.0")
    other_secret = db.scalar(settings.resolved_database_url,
                             "SELECT secret_token FROM cloud_api WHERE name = 'api-other'")
    assert other_secret and "pw-two" not in str(other_secret), "the changed secret is stored encrypted"


def test_every_error_is_next_to_its_field_in_its_words_and_the_values_stay(console: Console,
                                                                           settings: Settings) -> None:
    with closing(login(console, ADMIN)) as admin:
        form = admin.get("/provisioning/cloud-apis/new", params={"kind": "aws"})
        refused = admin.post("/provisioning/cloud-apis", data={
            "csrf_token": csrf(form), "kind": "aws", "name": "lab one", "account_id": "12345",
            "gateway_id": "abc123defg", "region": "moon", "stage": "prod", "pace": "3", "check": "on"})
        assert refused.status_code == 422
        assert field_error(refused, "account_id") == "AWS account ID: '12345' is not a 12-digit AWS account ID"
        assert field_error(refused, "region") == "Region: 'moon' is not an AWS region such as eu-central-1"
        assert field_error(refused, "pace").startswith("Pace (fraction of the quota): '3' is not a fraction")
        assert not field_error(refused, "gateway_id") and not field_error(refused, "name")
        form_text = refused.text.split('id="cloud-api-form"')[1].split("</form>")[0]
        assert "--" not in form_text and "BINDERY_" not in form_text, "no CLI words"
        assert value_of(refused, "account_id") == "12345" and value_of(refused, "region") == "moon"
        assert value_of(refused, "name") == "lab one" and value_of(refused, "pace") == "3"
        assert "<details open>" in refused.text, "a refused advanced field is shown"

        form = admin.get("/provisioning/cloud-apis/new", params={"kind": "other"})
        secret = admin.post("/provisioning/cloud-apis", data={
            "csrf_token": csrf(form), "kind": "other", "name": "", "type": "private cloud",
            "url": "http://example.com/x", "credentials": "no-colon-secret"})
        assert field_error(secret, "credentials") == "Credentials: expected username:password"
        assert field_error(secret, "url") == "Receiver URL: 'http://example.com/x' must use https (plain http only " \
                                             "to loopback)"
        assert field_error(secret, "name") == "Name is required"
        assert "no-colon-secret" not in secret.text, "a secret is never echoed back"
        assert '<option value="private cloud" selected>' in secret.text, "the choice is kept"
    assert db.scalar(settings.resolved_database_url, "SELECT COUNT(*) FROM cloud_api") == 0


def test_private_address_refusal_says_what_to_do_in_page_words(console: Console,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "0")
    from bindery.clouds.kinds import spec_of
    from bindery.settings import get_settings
    from bindery.web.cloud_pages import _labelled, problems_of

    spec = spec_of("other")
    problems = problems_of(spec, {"name": "x", "type": "AWS", "url": "https://127.0.0.1/interop",
                                  "credentials": "a:b"}, get_settings(), creating=True)
    shown = _labelled(spec, problems)["url"]
    assert shown.startswith("Receiver URL: 127.0.0.1 resolves to non-public address 127.0.0.1; private addresses")
    assert "BINDERY_" not in shown and "--" not in shown


def test_removal_is_confirmed_and_refused_while_in_use(console: Console, settings: Settings) -> None:
    with console.client(ADMIN) as api:
        assert api.post("/api/cloud-apis", json={"name": "lab", "kind": "other", "type": "AWS", "url":
                        f"{console.receiver}/interop", "credentials": "bindery:pw-secret-value"}).status_code == 201
        assert api.post("/api/cloud-apis", json={"name": "spare", "kind": "aws-iot", "region": "eu-west-1",
                                                 "policy": "Fleet", "check": False}).status_code == 201
        bound = api.post("/api/batches", json={"bid": "W002", "cloud_api": "lab"}).json()
        for _ in range(300):
            if api.get(f"/api/jobs/{bound['job']['id']}").json()["state"] in ("COMPLETED", "FAILED"):
                break
            import time
            time.sleep(0.1)  # polling a job's state, not synchronising on time
    with closing(login(console, ADMIN)) as admin:
        asked = admin.get("/provisioning/cloud-apis/lab/remove")
        assert "cannot be removed while something still uses it" in asked.text
        assert "batch <a href=\"/batches/W002\">W002</a> targets it" in asked.text
        assert "it holds 3 provisioned device records of batch" in asked.text
        assert 'id="confirm-remove"' not in asked.text
        refused = admin.post("/provisioning/cloud-apis/lab/remove",
                             data={"csrf_token": csrf(asked), "confirm": "yes"})
        assert refused.status_code == 409 and "lab is still in use: batch W002 target it" in refused.text
        spare = admin.get("/provisioning/cloud-apis/spare/remove")
        assert 'id="confirm-remove"' in spare.text and "This cannot be undone" in spare.text
        unconfirmed = admin.post("/provisioning/cloud-apis/spare/remove", data={"csrf_token": csrf(spare)})
        assert unconfirmed.status_code == 303, "without the confirmation step nothing is removed"
        assert db.scalar(settings.resolved_database_url, "SELECT COUNT(*) FROM cloud_api") == 2
        removed = admin.post("/provisioning/cloud-apis/spare/remove", follow_redirects=True,
                             data={"csrf_token": csrf(spare), "confirm": "yes"})
        assert "removed Product Cloud API spare" in removed.text
    with console.client(ADMIN) as api:
        answer = api.delete("/api/cloud-apis/lab")
        assert answer.status_code == 409 and "deprovision them from lab first" in answer.json()["detail"]
    assert db.scalar(settings.resolved_database_url, "SELECT COUNT(*) FROM cloud_api") == 1


def test_the_api_sets_pace_chunk_size_and_timeout_and_shows_each_kinds_fields(console: Console) -> None:
    with console.client(ADMIN) as api:
        made = api.post("/api/cloud-apis", json={"name": "iot", "kind": "aws-iot", "region": "eu-west-1",
                                                 "policy": "Fleet", "pace": 0.5, "chunk_size": 40, "timeout": 12,
                                                 "check": False})
        assert made.status_code == 201, made.text
        assert (made.json()["pace"], made.json()["chunk_size"], made.json()["timeout"]) == ("0.5", "40", "12.0")
        changed = api.patch("/api/cloud-apis/iot", json={"kind": "aws-iot", "chunk_size": 80, "check": False})
        assert changed.status_code == 200 and changed.json()["chunk_size"] == "80" and changed.json()["pace"] == "0.5"
        wrong = api.patch("/api/cloud-apis/iot", json={"kind": "other", "check": False})
        assert wrong.status_code == 422 and "cannot change" in wrong.json()["detail"]
        stray = api.post("/api/cloud-apis", json={"name": "x", "kind": "aws-iot", "url": "https://x"})
        assert stray.status_code == 422
        schemas = api.get("/openapi.json").json()["components"]["schemas"]
    assert {"region", "policy", "thing_prefix", "pace", "chunk_size", "timeout"} <= set(schemas["AwsIotCloudApi"]
                                                                                         ["properties"])
    assert "connection_string" in schemas["AzureIotHubCloudApi"]["properties"]
    assert "connection_string" not in schemas["AwsIotCloudApi"]["properties"]
    assert schemas["OtherCloudApi"]["properties"]["type"]["enum"] == ["AWS", "Azure", "private cloud"]


def test_a_new_destination_needs_the_secret_again_over_the_web(console: Console, settings: Settings) -> None:
    """A stolen session or token must not send the stored credentials to an address of its choosing."""
    with console.client(ADMIN) as api:
        made = api.post("/api/cloud-apis", json={"name": "rx", "kind": "other", "type": "private cloud",
                                                 "url": "https://receiver.example.com/interop",
                                                 "credentials": "u:pw-one", "check": False})
        assert made.status_code == 201, made.text
        moved = api.patch("/api/cloud-apis/rx", json={"kind": "other", "url": "https://attacker.example/x",
                                                      "check": False})
        assert moved.status_code == 422 and "credentials is needed again" in str(moved.json()["detail"]), moved.text
        assert api.get("/api/cloud-apis").json()[0]["url"] == "https://receiver.example.com/interop"
        same = api.patch("/api/cloud-apis/rx", json={"kind": "other", "chunk_size": 50, "check": False})
        assert same.status_code == 200, same.text
        given = api.patch("/api/cloud-apis/rx", json={"kind": "other", "url": "https://other.example.com/x",
                                                      "credentials": "u:pw-two", "check": False})
        assert given.status_code == 200 and given.json()["url"] == "https://other.example.com/x", given.text
