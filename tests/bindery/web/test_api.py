"""The HTTP API against a real uvicorn server: every rule and error for members, admins, another account."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import httpx

from bindery.settings import Settings
from tests.bindery.web.conftest import DEVICES, Console
from tests.support import db
from tests.support.servers import held
from tests.support.world import ADMIN, MEMBER, OTHER


def add_lab(console: Console, name: str = "lab") -> httpx.Response:
    with console.client(ADMIN) as admin:
        return admin.post("/api/cloud-apis", json={
            "name": name, "kind": "other", "type": "private cloud", "url": f"{console.receiver}/interop",
            "credentials": "bindery:pw-secret-value", "quota": "1000"})


def wait_job(client: httpx.Client, job: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = client.get(f"/api/jobs/{job['id']}").json()
        if status["state"] in ("COMPLETED", "FAILED"):
            return dict(status)
        assert time.monotonic() < deadline, status
        time.sleep(0.2)


def test_tokens_authenticate_and_revoked_ones_do_not(console: Console) -> None:
    with console.client(None) as anonymous:
        missing = anonymous.get("/api/batches")
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert "missing API token" in missing.json()["detail"]
        assert anonymous.get("/api/me", headers={"Authorization": "Bearer bdy_nope"}).status_code == 401
    with console.client(MEMBER) as member:
        assert member.get("/api/me").json() == {"email": MEMBER, "role": "member", "account": "Acme"}
    listed = console.cli.ok("token", "list", "--user", MEMBER, "--json").json
    console.cli.ok("token", "revoke", str(listed[0]["id"]))  # type: ignore[index]
    with console.client(MEMBER) as member:
        assert member.get("/api/me").json()["detail"] == "invalid or revoked API token"


def test_member_binds_admin_only_actions_refused(console: Console, settings: Settings) -> None:
    added = add_lab(console)
    assert added.status_code == 201, added.text
    with console.client(MEMBER) as member:
        bound = member.post("/api/batches", json={"bid": "W001"})
        assert bound.status_code == 201 and bound.json() == {"bid": "W001", "devices": 12, "already_bound": False,
                                                             "job": None}
        again = member.post("/api/batches", json={"qr": "https://bindery.example/bind?bid=W001"})
        assert again.json()["already_bound"] is True
        picked = member.post("/api/batches", json={"bid": "W002", "cloud_api": "lab"})
        assert picked.status_code == 403 and "only admins may pick a Product Cloud API" in picked.json()["detail"]
        for method, path, body in (("POST", "/api/batches/W001/provision", {"cloud_api": "lab"}),
                                   ("GET", "/api/batches/W001/manifest", None),
                                   ("PUT", "/api/batches/W001/target", {"cloud_api": "lab"}),
                                   ("DELETE", "/api/batches/W001", None),
                                   ("POST", "/api/cloud-apis", {"name": "x", "kind": "aws-iot"})):
            refused = member.request(method, path, json=body)
            assert refused.status_code == 403, (method, path, refused.text)
        shown = member.get("/api/batches/W001").json()
        assert shown["bound"] == 12 and shown["provisioned"] == {} and shown["bound_by"] == MEMBER
    assert db.scalar(settings.resolved_database_url, "SELECT COUNT(*) FROM binding") == 1, "refusals changed nothing"


def test_another_accounts_batch_is_exactly_an_unknown_one(console: Console) -> None:
    with console.client(MEMBER) as member:
        member.post("/api/batches", json={"bid": "W001"}).raise_for_status()
    with console.client(OTHER) as other:
        theirs = other.get("/api/batches/W001")
        unknown = other.get("/api/batches/NOPE-1")
        assert theirs.status_code == unknown.status_code == 404
        assert theirs.json() == {"detail": "unknown BID W001"} and unknown.json() == {"detail": "unknown BID NOPE-1"}
        assert other.post("/api/batches", json={"bid": "W001"}).json() == {"detail": "unknown BID W001"}
        assert other.get("/api/batches").json() == []
        bad = other.post("/api/batches", json={"qr": "not a url"})
        assert bad.status_code == 422 and "is not a URL" in bad.json()["detail"]


def test_admin_provisions_through_jobs_and_downloads_the_manifest(console: Console, settings: Settings) -> None:
    created = add_lab(console)
    assert created.status_code == 201 and created.json()["credentials"] != "bindery:pw-secret-value"
    with console.client(ADMIN) as admin:
        assert "pw-secret-value" not in admin.get("/api/cloud-apis/lab").text
        assert "pw-secret-value" not in admin.get("/api/cloud-apis").text
        assert add_lab(console).status_code == 409
        bound = admin.post("/api/batches", json={"bid": "W002", "cloud_api": "lab"}).json()
        done = wait_job(admin, bound["job"])
        assert done["state"] == "COMPLETED" and done["provisioned"] == {"lab": 3} and done["devices"] == 3
        admin.post("/api/batches", json={"bid": "W001"}).raise_for_status()
        no_target = admin.post("/api/batches/W001/provision", json={})
        assert no_target.status_code == 422 and "no target Product Cloud API" in no_target.json()["detail"]
        assert admin.put("/api/batches/W001/target", json={"cloud_api": "lab"}).json()["target"] == "lab"
        job = admin.post("/api/batches/W001/provision", json={})
        assert job.status_code == 202
        assert wait_job(admin, job.json())["provisioned"] == {"lab": 12}
        assert held(console.receiver) == sorted(DEVICES["W001"] + DEVICES["W002"])
        listed = {b["bid"]: b for b in admin.get("/api/batches").json()}
        assert listed["W001"]["provisioned"] == {"lab": 12} and listed["W001"]["bound"] == 12
        manifest = admin.get("/api/batches/W001/manifest")
        assert manifest.status_code == 200 and manifest.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(manifest.text)))
        assert rows[0] == ["device_id", "group_id", "certificate"] and sorted(r[0] for r in rows[1:]) == DEVICES["W001"]
        busy = admin.delete("/api/batches/W001")
        assert busy.status_code == 409 and "has provisioned devices" in busy.json()["detail"]
        admin.post("/api/batches", json={"bid": "W003"}).raise_for_status()
        assert admin.delete("/api/batches/W003").status_code == 204
        assert admin.get("/api/jobs/nope").status_code == 404
    with console.client(OTHER) as other:
        assert other.get(f"/api/jobs/{bound['job']['id']}").status_code == 404, "jobs are per account"
    audited = dict(db.rows(settings.resolved_database_url,  # type: ignore[arg-type]
                           "SELECT action, actor FROM audit_event WHERE action IN "
                           "('cloud_api.add', 'batch.bind', 'batch.set_target', 'manifest.export', 'batch.unbind')"))
    assert set(audited.values()) == {ADMIN} and len(audited) == 5


def test_cloud_api_validation_secrets_and_auto_provision(console: Console, settings: Settings) -> None:
    with console.client(ADMIN) as admin:
        sneaky = admin.post("/api/cloud-apis", json={"name": "x", "kind": "other", "type": "AWS", "credentials":
                                                    "@/etc/passwd", "url": f"{console.receiver}/interop"})
        assert sneaky.status_code == 422 and sneaky.json()["detail"] == "credentials: expected username:password"
        missing = admin.post("/api/cloud-apis", json={"name": "iot", "kind": "aws-iot", "region": "eu-central-1"})
        assert missing.status_code == 422 and "policy" in missing.json()["detail"]
        wrong = admin.post("/api/cloud-apis", json={"name": "x", "kind": "nope"})
        assert wrong.status_code == 422
        down = admin.post("/api/cloud-apis", json={"name": "down", "kind": "other", "type": "AWS",
                                                  "url": "http://127.0.0.1:9/interop", "credentials": "a:b"})
        assert down.status_code == 409 and "check failed" in down.json()["detail"]
        assert admin.get("/api/settings/auto-provision").json() == {"enabled": False, "cloud_api": None}
        assert admin.put("/api/settings/auto-provision", json={"enabled": True}).status_code == 422
    assert add_lab(console).status_code == 201
    with console.client(ADMIN) as admin:
        assert admin.put("/api/settings/auto-provision", json={"enabled": True, "cloud_api": "lab"}).json() == {
            "enabled": True, "cloud_api": "lab"}
    with console.client(MEMBER) as member:
        bound = member.post("/api/batches", json={"bid": "W003"}).json()
        assert bound["job"] is not None, "auto-provision follows a member's bind"
        assert wait_job(member, bound["job"])["provisioned"] == {"lab": 2}
        assert member.put("/api/settings/auto-provision", json={"enabled": False}).status_code == 403
    with console.client(ADMIN) as admin:
        assert admin.delete("/api/cloud-apis/nope").status_code == 404
    assert db.scalar(settings.resolved_database_url, "SELECT COUNT(*) FROM cloud_api") == 1


def test_security_headers_and_openapi(console: Console) -> None:
    with console.client(None) as anonymous:
        page = anonymous.get("/login")
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        policy = page.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "unsafe" not in policy, "scripts from the package only"
        assert page.headers["x-content-type-options"] == "nosniff"
        schema = anonymous.get("/openapi.json").json()
        assert "/api/batches/{bid}/provision" in schema["paths"] and "/login" not in schema["paths"]


def test_a_deprovision_job_an_interop_target_refuses_says_the_apis_fix(console: Console) -> None:
    """The job's message is read at GET /api/jobs/{id}: it names the request's forget field, not the CLI's
    --forget."""
    add_lab(console)
    with console.client(ADMIN) as admin:
        bound = admin.post("/api/batches", json={"bid": "W002", "cloud_api": "lab"}).json()
        assert wait_job(admin, bound["job"])["state"] == "COMPLETED"
        started = admin.post("/api/batches/W002/deprovision", json={"cloud_api": "lab", "forget": False})
        assert started.status_code == 202, started.text
        failed = wait_job(admin, started.json())
    assert failed["state"] == "FAILED" and "no removal" in failed["message"], failed
    assert "--forget" not in failed["message"] and "send it again with forget true" in failed["message"], failed
