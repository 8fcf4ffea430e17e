"""The console's transfer and split forms over HTTP (a real server, real session cookies): who may use them,
the CSRF check, another account's BID, refusals changing nothing, and the code never kept anywhere but the
one answer that shows it."""

from __future__ import annotations

import re
from contextlib import closing

import httpx

from bindery.settings import Settings
from tests.bindery.web.conftest import Console
from tests.bindery.web.test_pages import csrf, login
from tests.support import db
from tests.support.world import ADMIN, MEMBER, OTHER

TABLES = ("batch_transfer", "custody", "batch", "binding", "device")


def test_members_third_accounts_and_forged_forms_change_nothing(console: Console, settings: Settings) -> None:
    url = settings.resolved_database_url
    console.cli.ok("bind", "W001", "--user", ADMIN)
    before = db.counts(url, TABLES)
    with closing(login(console, MEMBER)) as member:
        token = csrf(member.get("/"))
        assert member.get("/batches/W001/transfer").status_code == 403
        assert member.get("/batches/W001/split").status_code == 403
        refused = member.post("/batches/W001/transfer", data={"to": "Beta", "csrf_token": token})
        assert refused.status_code == 403 and "only admins" in refused.text
        cut = member.post("/batches/W001/split", data={"new_bid": "W001-2", "count": "2", "csrf_token": token})
        assert cut.status_code == 403
    with closing(login(console, OTHER)) as other:
        token = csrf(other.get("/"))
        assert other.get("/batches/W001/transfer").status_code == 404
        stolen = other.post("/batches/W001/transfer", data={"to": "Beta", "csrf_token": token})
        assert stolen.status_code == 404 and "unknown BID W001" in stolen.text
        assert other.post("/batches/W001/split", data={"new_bid": "W001-2", "count": "2",
                                                       "csrf_token": token}).status_code == 404
    with closing(login(console, ADMIN)) as admin:
        forged = admin.post("/batches/W001/transfer", data={"to": "Beta", "csrf_token": "forged"})
        assert forged.status_code == 403 and "CSRF" in forged.text
        token = csrf(admin.get("/"))
        for data, field, said in (
                ({"to": ""}, "to", "Receiving account: give the name of the account that gets the batch"),
                ({"to": "Acme"}, "to", "Receiving account: batch W001 already belongs to account Acme"),
                ({"to": "Beta", "expires": "1y"}, "expires", "Code expires after: &#39;1y&#39; is not a duration")):
            answer = admin.post("/batches/W001/transfer", data={**data, "csrf_token": token})
            assert answer.status_code == 422, answer.text
            assert f'id="error-{field}"' in answer.text and said in answer.text, answer.text
            assert "--to" not in answer.text and "--expires" not in answer.text
        for data, field, said in (
                ({"new_bid": "W001-2", "count": "2", "devices": "w1-000"}, "count", "not both"),
                ({"new_bid": "W001-2", "count": "12"}, "count", "Number of devices to move: 12 is not from 1 to 11"),
                ({"new_bid": "W001-2", "devices": "w1-000\nw9-999"}, "devices", "Device IDs to move: device"),
                ({"new_bid": "", "count": "2"}, "new_bid", "New BID: give the BID of the new batch")):
            answer = admin.post("/batches/W001/split", data={**data, "csrf_token": token})
            assert answer.status_code == 422, answer.text
            assert f'id="error-{field}"' in answer.text and said in answer.text, answer.text
            assert "--count" not in answer.text and "--devices" not in answer.text
        assert db.counts(url, TABLES) == before
        made = admin.post("/batches/W001/transfer", data={"to": "Beta", "csrf_token": token})
        assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
        code = re.search(r'<output aria-label="Transfer code">([A-Z2-7-]+)</output>', made.text)
        assert code is not None
        assert f'<span class="accept-url">{console.url}/transfers/accept</span>' in made.text  # for a phone
        again = admin.get("/batches/W001")
        assert code[1] not in again.text and "On offer to Beta" in again.text
        assert 'action="/batches/W001/provision"' not in again.text
        twice = admin.post("/batches/W001/transfer", data={"to": "Beta", "csrf_token": token})
        assert code[1] not in twice.text and "already on offer" in twice.text
    stored = " ".join(str(v) for table in ("batch_transfer", "audit_event")
                      for row in db.rows(url, f"SELECT * FROM {table}") for v in row)
    assert code[1] not in stored and code[1].replace("-", "") not in stored
    with closing(login(console, MEMBER)) as member:
        listed = member.get("/")
        assert 'action="/transfers/accept"' not in listed.text
        refused = member.post("/transfers/accept", data={"code": code[1], "csrf_token": csrf(listed)},
                              follow_redirects=True)
        assert "only admins" in refused.text and "is yours now" not in refused.text
    with closing(login(console, OTHER)) as other:
        listed = other.get("/")
        assert 'data-offer="W001"' in listed.text and 'action="/transfers/accept"' in listed.text
        taken = other.post("/transfers/accept", data={"code": f"  {code[1].lower()} ", "csrf_token": csrf(listed)},
                           follow_redirects=True)
        assert str(taken.url).endswith("/batches/W001")
        assert "batch W001 (12 devices) from Acme is yours now" in taken.text


def test_the_split_page_counts_a_device_in_two_apis_once_and_links_each_deprovision(console: Console,
                                                                                     settings: Settings) -> None:
    """W001's 12 devices are in lab and in plant, 4 of them removed from both again: 8 are provisioned, not
    16 (the page said all 12 were, and offered no form); when all are, each API's deprovision is linked."""
    cli, url = console.cli, settings.resolved_database_url
    cli.ok("bind", "W001", "--user", ADMIN)
    for name in ("lab", "plant"):
        cli.ok("cloud-api", "add", name, "--user", ADMIN, "--kind", "other", "--type", "private cloud",
               "--credentials", "bindery:pw-secret-value", "--url", f"{console.receiver}/interop", "--quota", "1000")
        cli.ok("provision", "W001", "--cloud-api", name, "--user", ADMIN)
    with closing(login(console, ADMIN)) as admin:
        every = admin.get("/batches/W001/split")
        assert 'id="held"' in every.text and "All 12 devices of W001 are provisioned" in every.text
        for name in ("lab", "plant"):
            assert f'href="/batches/W001/deprovision?cloud_api={name}">Deprovision the 12 devices from {name}…' \
                in every.text, every.text
        db.execute(url, "UPDATE provisioning_record SET status = 'removed' WHERE device_id IN (SELECT id FROM "
                        "device WHERE device_id IN ('w1-008', 'w1-009', 'w1-010', 'w1-011'))")
        some = admin.get("/batches/W001/split")
        assert 'id="held"' not in some.text and 'action="/batches/W001/split"' in some.text, some.text
        assert "(8 of this batch's devices are provisioned)" in some.text, some.text


def test_the_accept_page_from_a_mail_asks_to_log_in_to_accept_and_comes_back(console: Console) -> None:
    """The code page names /transfers/accept for a phone: opened without a session, the login says what for."""
    with closing(httpx.Client(base_url=console.url, timeout=30)) as visitor:
        sent = visitor.get("/transfers/accept")
        assert sent.status_code in (302, 303, 307) and sent.headers["location"] == "/login?next=%2Ftransfers%2Faccept"
        page = visitor.get(sent.headers["location"])
        assert "<h1>Log in to accept a transferred batch</h1>" in page.text, page.text
        assert "After logging in you come back to accepting the batch" in page.text
        assert "<h1>Log in</h1>" in visitor.get("/login").text
    with closing(login(console, OTHER, "/transfers/accept")) as other:
        assert "<h1>Accept a transferred batch</h1>" in other.get("/transfers/accept").text
