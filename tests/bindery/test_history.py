"""Run history, the audit log and stored drift reports: `bindery runs|audit|reconcile --last` and the API."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from bindery.settings import get_settings
from bindery.web.app import create_app as create_web
from tests.bindery.provisioning.test_devices import one_failed  # noqa: F401  (fixture)
from tests.conftest import Cli
from tests.support.servers import serve
from tests.support.world import ADMIN, MEMBER, OTHER


def clear_squatter(tmp_path: Path) -> None:
    """What the operator does in the Product Cloud before retrying: remove the conflicting registration."""
    with sqlite3.connect(tmp_path / "recv.db") as receiver_db:
        receiver_db.execute("DELETE FROM device WHERE ref = 'd-2'")


def test_both_runs_with_their_starters_and_outcomes(one_failed: Cli, tmp_path: Path) -> None:  # noqa: F811
    clear_squatter(tmp_path)
    one_failed.ok("provision", "D001", "--cloud-api", "lab", "--user", ADMIN)
    runs = one_failed.ok("runs", "D001", "--user", MEMBER, "--json").json
    assert [(r["kind"], r["cloud_api"], r["status"], r["started_by"], r["started_via"]) for r in runs] == [  # type: ignore[index, union-attr]
        ("provision", "lab", "completed", ADMIN, "cli"), ("provision", "lab", "failed", ADMIN, "cli")]
    first, second = runs[1], runs[0]  # type: ignore[index]
    assert first["counts"] == {"devices": 6, "provisioned": 5, "already_present": 0, "failed": 1, "not_tried": 0,
                               "warnings": 0}
    assert second["counts"]["provisioned"] == 6 and second["counts"]["failed"] == 0
    assert first["finished_at"] >= first["started_at"] and second["id"] > first["id"]
    assert first["message"] == ("5 of 6 devices provisioned into lab; 1 device failed: ref or certificate already "
                                "registered differently")
    devices = one_failed.ok("devices", "D001", "--user", ADMIN, "--json").json
    attempts = {d["device_id"]: d["attempts"] for d in devices}  # type: ignore[index, union-attr]
    assert attempts == {"d-0": 1, "d-1": 1, "d-2": 2, "d-3": 1, "d-4": 1, "d-5": 1}, "the rerun tried only d-2"
    table = one_failed.ok("runs", "--user", ADMIN).out
    assert "D001" in table and "completed" in table and "failed" in table
    foreign = one_failed("runs", "D001", "--user", OTHER)
    assert foreign.code == 2 and "unknown BID D001" in foreign.err
    assert one_failed.ok("runs", "--user", OTHER, "--json").json == []


def test_a_killed_runs_record_is_closed_by_the_next_run(one_failed: Cli, tmp_path: Path) -> None:  # noqa: F811
    """A process killed with -9 leaves its run `running`; the next run on the batch and target, holding
    the lease, closes it as failed, and only it."""
    from bindery import runs as history
    from bindery.db import session_scope
    from bindery.models.catalog import Batch
    from bindery.models.clouds import CloudApi

    settings = get_settings()
    with session_scope(settings) as session:  # what the killed process had written when it started
        batch = session.exec(select(Batch).where(Batch.bid == "D001")).one()
        api = session.exec(select(CloudApi).where(CloudApi.name == "lab")).one()
        assert batch.id is not None and api.id is not None
        killed = history.begin(session=session, kind=history.PROVISION, batch_id=batch.id, bid="D001",
                               api_id=api.id, api_name="lab", started_by=ADMIN, origin=history.CLI)
    before = {r["id"]: r["status"] for r in one_failed.ok("runs", "D001", "--user", ADMIN, "--json").json}  # type: ignore[index, union-attr]
    assert before[killed] == "running" and list(before.values()).count("failed") == 1
    clear_squatter(tmp_path)
    one_failed.ok("provision", "D001", "--cloud-api", "lab", "--user", ADMIN)
    after = {r["id"]: r for r in one_failed.ok("runs", "D001", "--user", ADMIN, "--json").json}  # type: ignore[index, union-attr]
    assert after[killed]["status"] == "failed" and after[killed]["message"] == history.ABANDONED
    assert after[killed]["finished_at"] is not None
    newest = max(after)
    assert after[newest]["status"] == "completed", "the new run is not touched"
    assert [r["status"] for i, r in sorted(after.items()) if i not in (killed, newest)] == ["failed"], \
        "the earlier failed run keeps its own message"
    assert "1 device failed" in next(r["message"] for i, r in after.items() if i not in (killed, newest))


def test_audit_log_for_the_operator_filtered(one_failed: Cli) -> None:  # noqa: F811
    events = one_failed.ok("audit", "--bid", "D001", "--json").json
    actions = [e["action"] for e in events]  # type: ignore[index, union-attr]
    assert actions == ["provision.finish", "provision.start", "batch.bind", "reel.import"], "newest first, D001 only"
    by_member = one_failed.ok("audit", "--user", MEMBER, "--json").json
    assert {e["action"] for e in by_member} == {"batch.bind"}  # type: ignore[index, union-attr]
    assert one_failed.ok("audit", "--since", "2099-01-01", "--json").json == []
    assert len(one_failed.ok("audit", "--since", "1h", "--limit", "3", "--json").json) == 3  # type: ignore[arg-type]
    beta = one_failed.ok("audit", "--account", "Beta", "--json").json
    assert {e["subject"] for e in beta} <= {OTHER, "Beta"}  # type: ignore[index, union-attr]
    bad = one_failed("audit", "--since", "yesterday")
    assert bad.code == 2 and "since: 'yesterday' is neither" in bad.err


def test_api_runs_audit_and_reports_follow_the_rules(one_failed: Cli) -> None:  # noqa: F811
    tokens = {who: one_failed.ok("token", "create", "--user", who, "--name", "t").out.strip().splitlines()[-1]
              for who in (ADMIN, MEMBER, OTHER)}
    with serve(create_web(get_settings())) as url:
        def get(who: str, path: str, **params: object) -> httpx.Response:
            return httpx.get(f"{url}{path}", params=params,  # type: ignore[arg-type]
                             headers={"Authorization": f"Bearer {tokens[who]}"})

        member_runs = get(MEMBER, "/api/runs", bid="D001")
        assert member_runs.status_code == 200 and [r["status"] for r in member_runs.json()] == ["failed"]
        assert get(OTHER, "/api/runs", bid="D001").status_code == 404
        assert get(OTHER, "/api/runs").json() == []
        assert get(ADMIN, "/api/runs", kind="sideways").status_code == 422
        audit = get(ADMIN, "/api/audit", bid="D001")
        assert audit.status_code == 200
        assert {"provision.start", "provision.finish"} <= {e["action"] for e in audit.json()}
        assert all(e["subject"] != "Beta" for e in get(ADMIN, "/api/audit").json())
        assert get(MEMBER, "/api/audit").status_code == 403
        assert get(OTHER, "/api/audit", bid="D001").json() == [], "another account's entries are not there"
        paged = get(ADMIN, "/api/audit", limit=2).json()
        older = get(ADMIN, "/api/audit", limit=2, before=paged[-1]["id"]).json()
        assert len(paged) == 2 and older and older[0]["id"] < paged[-1]["id"]
        assert get(ADMIN, "/api/reconcile/latest").json() == []


@pytest.mark.parametrize("text", ["24h", "7d", "30m", "2026-11-28", "2026-11-28T10:00:00+01:00"])
def test_since_forms(text: str) -> None:
    from bindery.audit import parse_since

    moment = parse_since(text)
    assert moment is not None and moment.tzinfo is not None
