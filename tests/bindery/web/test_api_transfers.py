"""Transfers and splits over the HTTP API (a real uvicorn server): the same rules as the CLI, in the
API's words (body field names, status codes)."""

from __future__ import annotations

from contextlib import closing

import pytest

from bindery.settings import Settings, reset_settings
from tests.bindery.web.conftest import Console
from tests.bindery.web.test_api import add_lab, wait_job
from tests.bindery.web.test_pages import login
from tests.support import db
from tests.support.world import ADMIN, MEMBER, OTHER


def test_offer_accept_and_the_giver_loses_sight(console: Console, settings: Settings) -> None:
    with console.client(MEMBER) as member:
        assert member.post("/api/batches", json={"bid": "W002"}).status_code == 201
        refused = member.post("/api/batches/W002/transfer", json={"to_account": "Beta"})
        assert refused.status_code == 403 and "only admins" in refused.json()["detail"]
    with console.client(ADMIN) as admin:
        bad = admin.post("/api/batches/W002/transfer", json={"to_account": "Nobody"})
        assert bad.status_code == 422 and bad.json()["detail"] == "to_account: unknown account 'Nobody'"
        for body, said in (({"to_account": "Beta", "note": "PO 1\u0000x"}, "note: holds control characters"),
                           ({"to_account": "Be\u0000ta"}, "to_account: unknown account")):  # PostgreSQL refuses NUL
            nul = admin.post("/api/batches/W002/transfer", json=body)
            assert nul.status_code == 422 and nul.json()["detail"].startswith(said), nul.text
        late = admin.post("/api/batches/W002/transfer", json={"to_account": "Beta", "expires": "1y"})
        assert late.status_code == 422 and late.json()["detail"].startswith("expires: '1y' is not a duration")
        offered = admin.post("/api/batches/W002/transfer", json={"to_account": "Beta", "note": "cut tape 1/3"})
        assert offered.status_code == 201, offered.text
        code = offered.json()["code"]
        assert offered.json()["bid"] == "W002" and offered.json()["to_account"] == "Beta"
        again = admin.post("/api/batches/W002/transfer", json={"to_account": "Beta"})
        assert again.status_code == 409 and "is on offer" in again.json()["detail"]
        busy = admin.post("/api/batches/W002/provision", json={"cloud_api": None})
        assert busy.status_code == 409 and "is on offer" in busy.json()["detail"]
        add_lab(console)
        retarget = admin.put("/api/batches/W002/target", json={"cloud_api": "lab"})
        assert retarget.status_code == 409 and "before you change its target" in retarget.json()["detail"]
    with console.client(OTHER) as other:
        listed = other.get("/api/transfers").json()
        assert [(t["bid"], t["direction"], t["state"], t["note"]) for t in listed] == [
            ("W002", "received", "offered", "cut tape 1/3")]
        assert "code" not in listed[0] and code not in str(listed)
        wrong = other.post("/api/transfers/accept", json={"code": "AAAA-" + code[5:]})
        assert wrong.status_code == 404 and "unknown transfer code" in wrong.json()["detail"]
        accepted = other.post("/api/transfers/accept", json={"code": code})
        assert accepted.status_code == 200, accepted.text
        assert accepted.json() == {"bid": "W002", "devices": 3, "from_account": "Acme", "job": None}
        used = other.post("/api/transfers/accept", json={"code": code})
        assert used.status_code == 409 and "already used" in used.json()["detail"]
        shown = other.get("/api/batches/W002").json()
        assert shown["account"] == "Beta" and [c["account"] for c in shown["custody"]] == ["Acme", "Beta"]
        assert [sorted(c) for c in shown["custody"]] == [sorted(  # the words: from, to
            ["account", "bid", "via", "from", "to", "offered_by", "accepted_by"])] * 2
        assert shown["custody"][0]["to"] == shown["custody"][1]["from"]
    with console.client(ADMIN) as admin:
        assert admin.get("/api/batches/W002").status_code == 404
        assert admin.get("/api/transfers").json()[0]["state"] == "accepted"
    assert db.scalar(settings.resolved_database_url, "SELECT COUNT(*) FROM batch_transfer") == 1


def test_accept_starts_the_receivers_auto_provisioning(console: Console) -> None:
    with console.client(ADMIN) as admin:
        admin.post("/api/batches", json={"bid": "W003"})
        code = admin.post("/api/batches/W003/transfer", json={"to_account": "Beta"}).json()["code"]
        withdrawn = admin.delete("/api/batches/W003/transfer")
        assert withdrawn.status_code == 204
        void = admin.delete("/api/batches/W003/transfer")
        assert void.status_code == 409 and "not on offer" in void.json()["detail"]
        code = admin.post("/api/batches/W003/transfer", json={"to_account": "Beta"}).json()["code"]
    with console.client(OTHER) as other:
        added = other.post("/api/cloud-apis", json={
            "name": "plant", "kind": "other", "type": "private cloud", "url": f"{console.receiver}/interop",
            "credentials": "bindery:pw-secret-value", "quota": "1000"})
        assert added.status_code == 201, added.text
        auto = other.put("/api/settings/auto-provision", json={"enabled": True, "cloud_api": "plant"})
        assert auto.status_code == 200
        accepted = other.post("/api/transfers/accept", json={"code": code}).json()
        assert accepted["job"] is not None
        done = wait_job(other, accepted["job"])
        assert done["state"] == "COMPLETED" and done["provisioned"] == {"plant": 2}


def test_split_over_the_api(console: Console) -> None:
    assert add_lab(console).status_code == 201
    with console.client(ADMIN) as admin:
        admin.post("/api/batches", json={"bid": "W001"})
        cut = admin.post("/api/batches/W001/split", json={"new_bid": "W001-B", "count": 5})
        assert cut.status_code == 201 and cut.json() == {"bid": "W001", "new_bid": "W001-B", "moved": 5, "left": 7}
        named = admin.post("/api/batches/W001/split", json={"new_bid": "W001-C", "devices": ["w1-011", "w1-010"]})
        assert named.json()["moved"] == 2
        missing = admin.post("/api/batches/W001/split", json={"new_bid": "W001-D", "devices": ["w1-000"]})
        assert missing.status_code == 422
        assert missing.json()["detail"] == "devices: device 'w1-000' is not in batch W001"
        taken = admin.post("/api/batches/W001/split", json={"new_bid": "W001-B", "count": 1})
        assert taken.status_code == 422 and taken.json()["detail"] == "new_bid: BID W001-B is taken: choose another"
        outside = admin.post("/api/batches/W001/split", json={"new_bid": "W002", "count": 1})
        assert outside.status_code == 422
        assert outside.json()["detail"].startswith("new_bid: 'W002' must begin with W001-")
        both = admin.post("/api/batches/W001/split", json={"new_bid": "W001-D", "count": 1, "devices": ["w1-000"]})
        assert both.status_code == 422 and "--" not in both.json()["detail"], both.text
        assert both.json()["detail"] == "give count or devices, not both"
        neither = admin.post("/api/batches/W001/split", json={"new_bid": "W001-D"})
        assert neither.status_code == 422 and neither.json()["detail"] == (
            "give the number of devices to move or their device ids; send count or devices (a list of device ids)")
        child = admin.get("/api/batches/W001-B").json()
        assert child["split_from"] == "W001" and child["devices"] == 5
    with console.client(OTHER) as other:
        assert other.post("/api/batches/W001/split", json={"new_bid": "W001-E", "count": 1}).status_code == 404


def test_refusals_say_the_apis_own_fix(console: Console, settings: Settings) -> None:
    """A provisioned batch can be neither offered nor split, and an offered one not provisioned: each 409
    names the API call that frees it, never a CLI command, and changes nothing."""
    assert add_lab(console).status_code == 201
    with console.client(ADMIN) as admin:
        admin.post("/api/batches", json={"bid": "W001"})
        job = admin.post("/api/batches/W001/provision", json={"cloud_api": "lab"})
        assert wait_job(admin, job.json())["state"] == "COMPLETED"
        before = db.counts(settings.resolved_database_url, ("batch", "batch_transfer", "binding"))
        offer = admin.post("/api/batches/W001/transfer", json={"to_account": "Beta"})
        assert offer.status_code == 409 and offer.json()["detail"] == (
            "batch W001 is provisioned (lab holds 12 devices): deprovision it first (POST "
            "/api/batches/W001/deprovision with cloud_api, or forget) before you offer it")
        cut = admin.post("/api/batches/W001/split", json={"new_bid": "W001-B", "count": 2})
        assert cut.status_code == 409 and cut.json()["detail"] == (
            "2 of the 2 devices to move from batch W001 are provisioned (in lab): deprovision them first "
            "(POST /api/batches/W001/deprovision with cloud_api, or forget)")
        assert db.counts(settings.resolved_database_url, ("batch", "batch_transfer", "binding")) == before
        admin.post("/api/batches", json={"bid": "W002"})
        assert admin.post("/api/batches/W002/transfer", json={"to_account": "Beta"}).status_code == 201
        busy = admin.post("/api/batches/W002/provision", json={"cloud_api": "lab"})
        assert busy.status_code == 409 and busy.json()["detail"] == (
            "batch W002 is on offer to another account: withdraw the offer (DELETE /api/batches/W002/transfer) "
            "before you provision it")


def test_a_run_of_wrong_codes_is_429_with_retry_after(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over the API a stopped account is told when to come back; the console's audit page says each try."""
    monkeypatch.setenv("BINDERY_TRANSFER_CODE_MAX_FAILURES", "2")
    reset_settings()
    with console.client(ADMIN) as admin:
        admin.post("/api/batches", json={"bid": "W001"})
        code = admin.post("/api/batches/W001/transfer", json={"to_account": "Beta"}).json()["code"]
    with console.client(OTHER) as other:
        for _ in range(2):
            assert other.post("/api/transfers/accept", json={"code": "AAAA-" + code[5:]}).status_code == 404
        stopped = other.post("/api/transfers/accept", json={"code": code})
        assert stopped.status_code == 429 and 840 < int(stopped.headers["Retry-After"]) <= 900, stopped.headers
        assert stopped.json()["detail"].startswith(
            "2 wrong or expired transfer codes tried in account Beta within 15 minutes")
    with closing(login(console, OTHER)) as page:
        audit_page = page.get("/audit").text
        assert audit_page.count("tried a transfer code that is not one of this account&#39;s offers") == 2


def test_field_errors_name_the_json_bodys_fields(console: Console, settings: Settings) -> None:
    """Each /api route family's field errors in the body's words (never a CLI flag), nothing changed."""
    tables = ("binding", "batch", "batch_transfer", "cloud_api", "account_settings", "audit_event")
    with console.client(ADMIN) as admin:
        admin.post("/api/batches", json={"bid": "W001"})
        assert admin.post("/api/batches/W001/split", json={"new_bid": "W001-B", "count": 1}).status_code == 201
        before = db.counts(settings.resolved_database_url, tables)
        for method, path, body, status, said in [
            ("POST", "/api/batches/W001/transfer", {"to_account": "Beta", "expires": "7w"}, 422,
             "expires: '7w' is not a duration like 30m, 12h or 7d"),
            ("POST", "/api/transfers/accept", {"code": " - "}, 422, "code: give the transfer code you were sent"),
            ("POST", "/api/batches/W001/split", {"new_bid": "W001-C"}, 422,
             "give the number of devices to move or their device ids; send count or devices"),
            ("POST", "/api/batches/W001/split", {"new_bid": "W002", "count": 1}, 422,
             "new_bid: 'W002' must begin with W001- (or W001_)"),
            ("POST", "/api/batches/W001/split", {"new_bid": "W001-B", "count": 1}, 422,
             "new_bid: BID W001-B is taken: choose another"),
            ("POST", "/api/batches/W001/split", {"new_bid": "W001-C", "count": 11}, 422,
             "count: 11 is not from 1 to 10"),
            ("POST", "/api/batches/W001/split", {"new_bid": "W001-C", "devices": ["w1-001", "w1-001"]}, 422,
             "devices: device 'w1-001' is named twice"),
            ("POST", "/api/cloud-apis", {"name": "lab", "kind": "other", "type": "private cloud", "url":
                                         f"{console.receiver}/interop", "credentials": "nocolon"}, 422,
             "credentials: expected username:password"),
            ("POST", "/api/cloud-apis", {"name": "lab", "kind": "other", "type": "private cloud", "url":
                                         "https://lab.invalid/interop", "credentials": "a:b"}, 422,
             "url: cannot resolve host lab.invalid; send \"check\": false to store it anyway"),
            ("PATCH", "/api/cloud-apis/nope", {"kind": "other", "chunk_size": "0"}, 404, "unknown Product Cloud API"),
            ("PUT", "/api/settings/auto-provision", {"enabled": True}, 422,
             "auto-provision needs a default: give cloud_api NAME"),
        ]:
            answer = admin.request(method, path, json=body)
            detail = answer.json()["detail"]
            assert (answer.status_code, detail.startswith(said)) == (status, True), (path, body, detail)
            assert "--" not in detail, detail
        assert add_lab(console).status_code == 201
        before["cloud_api"] += 1
        before["audit_event"] += 1
        for body, said in [({"kind": "other", "credentials": "nocolon"}, "credentials: expected username:password"),
                           ({"kind": "other", "chunk_size": "0"}, "chunk_size: '0' is not a whole number"),
                           ({"kind": "aws", "check": False}, "kind cannot change (lab is other)")]:
            answer = admin.patch("/api/cloud-apis/lab", json=body)
            assert answer.status_code == 422 and answer.json()["detail"].startswith(said), answer.text
            assert "--" not in answer.json()["detail"]
    assert db.counts(settings.resolved_database_url, tables) == before
