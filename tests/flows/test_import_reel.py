"""The import-reel flow against a real Prefect server, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect.artifacts import Artifact

from bindery.crypto.certs import pem_of
from bindery.flows.import_reel import import_reel
from bindery.reels.demo import DemoReel
from bindery.settings import Settings
from tests.conftest import Cli
from tests.support import db
from tests.support.certs import Chain, write_csv


def test_flow_imports_in_chunks_and_publishes_a_table(cli: Cli, reels: dict[str, DemoReel], settings: Settings,
                                                      monkeypatch: object) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setenv("BINDERY_IMPORT_CHUNK_SIZE", "2")
    monkeypatch.setenv("BINDERY_VERIFY_WORKERS", "2")
    demo = reels["infineon"]
    cli.ok("trust", "add", *demo.ca_files)
    summary = import_reel(path=str(demo.reel))
    assert summary.pop("verify_processes") >= 1, "the two chunks were verified in worker processes"
    assert summary == {"bid": "INF-001", "source": "INF-001.7z", "imported": 4, "already_imported": False,
                       "skipped": 0}
    assert db.counts(settings.resolved_database_url)["device"] == 4
    artifact = Artifact.get("reel-inf-001")
    assert artifact is not None and "INF-001" in str(artifact.data)
    again = import_reel(path=str(demo.reel))
    assert again["already_imported"] is True
    assert db.counts(settings.resolved_database_url)["device"] == 4


def test_one_verify_worker_keeps_the_flow_in_its_own_process(cli: Cli, reels: dict[str, DemoReel],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_IMPORT_CHUNK_SIZE", "2")
    monkeypatch.setenv("BINDERY_VERIFY_WORKERS", "1")
    demo = reels["infineon"]
    cli.ok("trust", "add", *demo.ca_files)
    summary = import_reel(path=str(demo.reel))
    assert summary["imported"] == 4 and summary["verify_processes"] == 0


def test_flow_fails_on_a_rejected_reel_and_lists_the_problems(cli: Cli, tmp_path: Path, settings: Settings) -> None:
    chain = Chain("flow")
    cli.ok("trust", "add", *chain.write_ca(tmp_path / "ca"))
    rows = [("f0", "FLOW-BAD", pem_of(chain.device("f0"))), ("f1", "FLOW-BAD", pem_of(Chain("x").device("f1")))]
    state = import_reel(path=str(write_csv(tmp_path / "r.csv", rows)), return_state=True)
    assert state.is_failed()
    artifact = Artifact.get("reel-rejected-flow-bad")
    assert artifact is not None and "r.csv: row 3 (device f1): untrusted chain" in str(artifact.data)
    assert db.counts(settings.resolved_database_url)["batch"] == 0
