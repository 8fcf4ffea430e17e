"""The Manifest File: exact CSV shape, gzip and stdout, spreadsheet safety, the exact round trip, who may."""

from __future__ import annotations

import csv
import gzip
import io
import shutil
from pathlib import Path

import pandas as pd
import pytest

from bindery.crypto.certs import pem_of
from bindery.settings import Settings
from tests.conftest import Cli
from tests.support import db
from tests.support.certs import write_csv
from tests.support.world import ADMIN, MEMBER, OTHER, make_world

DEVICE_IDS = ["b-2", "B-10", "a_1", "=cmd|' /C calc'!A0", "+1", "@sum", "-5", "'quoted", "Z9"]


@pytest.fixture
def world(cli: Cli, tmp_path: Path) -> Cli:
    make_world(cli, tmp_path, {"M001": DEVICE_IDS, "-X1": ["x1"]})
    cli.ok("bind", "M001", "--user", MEMBER)
    return cli


def test_manifest_shape(world: Cli, tmp_path: Path, settings: Settings) -> None:
    out = tmp_path / "m.csv"
    result = world.ok("manifest", "M001", "--user", ADMIN, "--out", out)
    assert f"wrote {len(DEVICE_IDS)} devices of batch M001" in result.out
    raw = out.read_bytes()
    assert raw.startswith(b"device_id,group_id,certificate\r\n")
    records = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert len(records) == 1 + len(DEVICE_IDS)
    assert [r[0] for r in records[1:]] == [f"'{d}" if d[0] in "=+-@'" else d for d in sorted(DEVICE_IDS)]
    pem = db.scalar(settings.resolved_database_url, "SELECT certificate_pem FROM device WHERE device_id = 'Z9'")
    assert ["Z9", "M001", pem] in records
    assert raw.count(b"\r\n") == 1 + len(DEVICE_IDS), "CRLF between records, LF inside the quoted PEM"
    assert raw.count(b'"-----BEGIN CERTIFICATE-----\n') == len(DEVICE_IDS)


def test_spreadsheet_dangerous_cells_are_neutralised(world: Cli, tmp_path: Path) -> None:
    out = tmp_path / "m.csv"
    world.ok("manifest", "M001", "--user", ADMIN, "--out", out)
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    for column in ("device_id", "group_id"):
        assert not frame[column].str.match(r"^[=+\-@\t\r]").any()
    assert "'=cmd|' /C calc'!A0" in set(frame["device_id"])
    world.ok("bind", "--user", MEMBER, "--", "-X1")
    world.ok("manifest", "--user", ADMIN, "--out", tmp_path / "x.csv", "--", "-X1")
    assert pd.read_csv(tmp_path / "x.csv", dtype=str)["group_id"].tolist() == ["'-X1"]


def test_gzip_and_stdout_hold_the_same_rows(world: Cli, tmp_path: Path) -> None:
    world.ok("manifest", "M001", "--user", ADMIN, "--out", tmp_path / "m.csv")
    world.ok("manifest", "M001", "--user", ADMIN, "--out", tmp_path / "m.csv.gz")
    stdout = world.ok("manifest", "M001", "--user", ADMIN, "--out", "-")
    plain = (tmp_path / "m.csv").read_bytes()
    assert gzip.decompress((tmp_path / "m.csv.gz").read_bytes()) == plain
    assert stdout.out.encode() == plain


@pytest.mark.parametrize("name", ["m.csv", "m.csv.gz"])
def test_round_trip_into_a_fresh_database_is_exact(world: Cli, tmp_path: Path, settings: Settings,
                                                   sqlite_template: Path, monkeypatch: pytest.MonkeyPatch,
                                                   name: str) -> None:
    out = tmp_path / name
    world.ok("manifest", "M001", "--user", ADMIN, "--out", out)
    columns = "device_id, fingerprint_sha256, certificate_pem, serial_hex, issuer, subject_cn, key_type"
    query = f"SELECT {columns} FROM device JOIN batch ON batch.id = device.batch_id WHERE bid = 'M001' ORDER BY 1"
    original = db.rows(settings.resolved_database_url, query)
    fresh = tmp_path / "fresh.db"
    shutil.copy(sqlite_template, fresh)
    monkeypatch.setenv("BINDERY_DATABASE_URL", f"sqlite:///{fresh}")
    world.ok("trust", "add", *sorted((tmp_path / "world-ca").iterdir()))
    world.ok("reel", "import", out)
    assert db.rows(f"sqlite:///{fresh}", query) == original
    assert len(original) == len(DEVICE_IDS)


@pytest.mark.parametrize(("user", "out", "code", "message"), [
    (MEMBER, "m.csv", 1, "max@acme.io is a member of account Acme: only admins may export manifests"),
    (OTHER, "m.csv", 2, "unknown BID M001"),
    (ADMIN, "missing/m.csv", 2, "folder"),
    ("ghost@acme.io", "m.csv", 2, "unknown user ghost@acme.io"),
])
def test_refused_exports_write_nothing(world: Cli, tmp_path: Path, settings: Settings, user: str, out: str,
                                       code: int, message: str) -> None:
    before = db.counts(settings.resolved_database_url)
    result = world("manifest", "M001", "--user", user, "--out", tmp_path / out)
    assert result.code == code and message in result.err
    assert not (tmp_path / out).exists()
    assert db.counts(settings.resolved_database_url) == before


def test_export_is_audited(world: Cli, tmp_path: Path, settings: Settings) -> None:
    world.ok("manifest", "M001", "--user", ADMIN, "--out", tmp_path / "m.csv")
    actor = db.scalar(settings.resolved_database_url,
                      "SELECT actor FROM audit_event WHERE action = 'manifest.export' AND subject = 'M001'")
    assert actor == ADMIN


def test_export_in_small_chunks_keeps_order(world: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_MANIFEST_CHUNK_SIZE", "2")
    world.ok("manifest", "M001", "--user", ADMIN, "--out", tmp_path / "small.csv")
    monkeypatch.setenv("BINDERY_MANIFEST_CHUNK_SIZE", "5000")
    world.ok("manifest", "M001", "--user", ADMIN, "--out", tmp_path / "big.csv")
    assert (tmp_path / "small.csv").read_bytes() == (tmp_path / "big.csv").read_bytes()


def test_write_csv_helper_matches_pem_of(tmp_path: Path) -> None:
    """Guard for the helper the other tests build reels with."""
    from tests.support.certs import Chain

    device = Chain("h").device("h1")
    path = write_csv(tmp_path / "h.csv", [("h1", "H", pem_of(device))])
    assert list(csv.reader(path.open(newline="")))[1][2] == pem_of(device)
