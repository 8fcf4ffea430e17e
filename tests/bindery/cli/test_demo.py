"""`bindery demo`, the README's main job, works twice in a row."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import segno

from tests.conftest import Cli


def test_demo_runs_twice(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BINDERY_DATABASE_URL", raising=False)
    cli = Cli(capsys, monkeypatch)
    first = cli.ok("demo")
    assert "imported batch DEMO-0001: 1000 of 1000 devices" in first.out
    assert "by QR text http://localhost:8000/bind?bid=DEMO-0001: bound 1000 devices" in first.out
    assert "7. manifest 1000 devices" in first.out
    assert "1000 of 1000 provisioned, 0 not" in first.out
    second = cli.ok("demo")
    assert "already imported as batch DEMO-0001" in second.out and "already bound" in second.out
    assert "1000 of 1000 provisioned, 0 not" in second.out
    manifest = (tmp_path / "home" / "demo" / "DEMO-0001-manifest.csv").read_text()
    assert manifest.startswith("device_id,group_id,certificate") and manifest.count("BEGIN CERTIFICATE") == 1000
    listed = cli.ok("batch", "list", "--user", "admin@demo.bindery.local", "--json").json
    assert [(b["bid"], b["bound"], b["provisioned"]) for b in listed] == [  # type: ignore[union-attr]
        ("DEMO-0001", 1000, {"demo-receiver": 1000})]
    import sqlite3

    received = sqlite3.connect(tmp_path / "home" / "demo" / "receiver.db").execute("SELECT COUNT(*) FROM device")
    assert received.fetchone() == (1000,)
    assert (tmp_path / "home" / "demo" / "DEMO-0001-qr.png").read_bytes().startswith(b"\x89PNG")
    expected = io.BytesIO()
    segno.make("http://localhost:8000/bind?bid=DEMO-0001", error="m").save(expected, kind="svg", scale=4)
    assert (tmp_path / "home" / "demo" / "DEMO-0001-qr.svg").read_bytes() == expected.getvalue()
