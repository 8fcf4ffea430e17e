"""The bind-batch and export-manifest flows against a real Prefect server."""

from __future__ import annotations

from pathlib import Path

from prefect.artifacts import Artifact

from bindery.flows.bind_batch import bind_batch
from bindery.flows.export_manifest import export_manifest
from bindery.settings import Settings
from tests.conftest import Cli
from tests.support import db
from tests.support.world import ADMIN, MEMBER, OTHER, make_world


def test_bind_then_export_as_flows(cli: Cli, tmp_path: Path, settings: Settings) -> None:
    make_world(cli, tmp_path, {"F001": ["f1", "f2"]})
    assert bind_batch(bid="F001", user=MEMBER) == {"bid": "F001", "devices": 2, "already_bound": False}
    assert bind_batch(bid="F001", user=ADMIN)["already_bound"] is True
    bound = Artifact.get("bind-f001")
    assert bound is not None and "Acme" in str(bound.data)
    out = tmp_path / "f.csv"
    summary = export_manifest(bid="F001", user=ADMIN, out=str(out))
    assert summary["rows"] == 2 and out.read_text().startswith("device_id,group_id,certificate")
    artifact = Artifact.get("manifest-f001")
    assert artifact is not None and str(out) in str(artifact.data)
    assert db.scalar(settings.resolved_database_url, "SELECT COUNT(*) FROM binding") == 1


def test_flows_fail_with_the_rules_errors(cli: Cli, tmp_path: Path, settings: Settings) -> None:
    make_world(cli, tmp_path, {"F002": ["g1"]})
    bind_batch(bid="F002", user=MEMBER)
    other = bind_batch(bid="F002", user=OTHER, return_state=True)
    assert other.is_failed() and "unknown BID F002" in str(other.message)
    member = export_manifest(bid="F002", user=MEMBER, out=str(tmp_path / "x.csv"), return_state=True)
    assert member.is_failed() and "only admins may export manifests" in str(member.message)
    assert not (tmp_path / "x.csv").exists()
