"""Which devices failed and why: `bindery devices` and GET /api/batches/{bid}/devices, keyset-paged."""

from __future__ import annotations

import base64
import csv
import io
from pathlib import Path

import httpx
import pytest

from bindery.crypto.certs import pem_of
from bindery.settings import get_settings
from bindery.web.app import create_app as create_web
from tests.bindery.provisioning.test_provision import add_receiver
from tests.conftest import Cli
from tests.support.certs import Chain
from tests.support.servers import serve
from tests.support.world import ADMIN, MEMBER, OTHER, make_world

DEVICES = [f"d-{i}" for i in range(6)]


@pytest.fixture
def one_failed(cli: Cli, tmp_path: Path, receiver: str, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """D001 provisioned into lab, except d-2: the receiver already holds another certificate under that ref."""
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    make_world(cli, tmp_path, {"D001": DEVICES})
    cli.ok("bind", "D001", "--user", MEMBER)
    add_receiver(cli, "lab", receiver)
    squatter = base64.b64encode(pem_of(Chain("squat").device("d-2")).encode()).decode()
    httpx.post(f"{receiver}/interop", auth=("bindery", "pw"),
               json={"action": "provision", "certs": [{"ref": "d-2", "cert": squatter}]}).raise_for_status()
    run = cli("provision", "D001", "--cloud-api", "lab", "--user", ADMIN)
    assert run.code == 1 and "failed: d-2: ref or certificate already registered differently" in run.err
    return cli


def test_failed_devices_with_their_errors(one_failed: Cli) -> None:
    failed = one_failed.ok("devices", "D001", "--status", "failed", "--user", MEMBER, "--json").json
    assert [(r["device_id"], r["cloud_api"], r["status"], r["error_class"]) for r in failed] == [  # type: ignore[index, union-attr]
        ("d-2", "lab", "failed", "permanent")]
    assert failed[0]["last_error"] == "ref or certificate already registered differently"  # type: ignore[index]
    done = one_failed.ok("devices", "D001", "--status", "provisioned", "--user", MEMBER, "--json").json
    assert [r["device_id"] for r in done] == ["d-0", "d-1", "d-3", "d-4", "d-5"]  # type: ignore[index, union-attr]
    assert all(r["external_ref"] and r["provisioned_at"] and r["attempts"] == 1 for r in done)  # type: ignore[index, union-attr]
    table = one_failed.ok("devices", "D001", "--user", ADMIN).out
    assert "d-2" in table and "failed" in table
    rows = list(csv.DictReader(io.StringIO(one_failed.ok("devices", "D001", "--user", ADMIN, "--csv").out)))
    assert [r["device_id"] for r in rows] == DEVICES and rows[2]["status"] == "failed"


def test_other_accounts_and_bad_filters(one_failed: Cli) -> None:
    foreign = one_failed("devices", "D001", "--user", OTHER)
    assert foreign.code == 2 and "unknown BID D001" in foreign.err
    wrong = one_failed("devices", "D001", "--status", "lost", "--user", ADMIN)
    assert wrong.code == 2 and "status: 'lost' is not one of pending, provisioned, failed, removed" in wrong.err


def test_api_pages_by_keyset_and_answers_csv(one_failed: Cli) -> None:
    tokens = {who: one_failed.ok("token", "create", "--user", who, "--name", "t").out.strip().splitlines()[-1]
              for who in (MEMBER, OTHER)}
    with serve(create_web(get_settings())) as url:
        member = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens[MEMBER]}"})
        seen, after = [], None
        while True:
            page = member.get("/api/batches/D001/devices", params={"limit": 2, **({"after": after} if after else {})})
            assert page.status_code == 200 and len(page.json()["devices"]) <= 2
            seen += [d["device_id"] for d in page.json()["devices"]]
            after = page.json()["next"]
            if after is None:
                break
        assert seen == DEVICES
        failed = member.get("/api/batches/D001/devices", params={"status": "failed", "cloud_api": "lab"}).json()
        assert [d["device_id"] for d in failed["devices"]] == ["d-2"] and failed["next"] is None
        as_csv = member.get("/api/batches/D001/devices", params={"limit": 3}, headers={"Accept": "text/csv"})
        assert as_csv.headers["content-type"].startswith("text/csv") and as_csv.headers["x-next-after"]
        assert [r["device_id"] for r in csv.DictReader(io.StringIO(as_csv.text))] == DEVICES[:3]
        assert member.get("/api/batches/D001/devices", params={"limit": 1001}).status_code == 422
        other = httpx.get(f"{url}/api/batches/D001/devices", headers={"Authorization": f"Bearer {tokens[OTHER]}"})
        assert other.status_code == 404
        member.close()
