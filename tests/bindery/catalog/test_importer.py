"""Importing reels of every format through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path

from bindery.crypto.certs import fingerprint, load_certificate, load_certificates, pem_of
from bindery.reels.demo import DemoReel
from bindery.settings import Settings
from tests.conftest import MICROCHIP_SAMPLE, VENDOR_CA, Cli
from tests.support import db
from tests.support.certs import Chain, write_csv


def trust(cli: Cli, demo: DemoReel) -> None:
    cli.ok("trust", "add", *demo.ca_files)


def test_infineon_bundle_imports_chip_ids_with_e0e0_by_default(cli: Cli, reels: dict[str, DemoReel],
                                                                settings: Settings) -> None:
    demo = reels["infineon"]
    trust(cli, demo)
    result = cli.ok("reel", "import", demo.reel)
    assert "imported batch INF-001: 4 of 4 devices" in result.out
    shown = cli.ok("batch", "show", "INF-001", "--json").json
    assert shown["bid"] == "INF-001" and shown["vendor"] == "infineon"  # type: ignore[index]
    assert shown["devices"] == 4 and shown["slot"] == "E0E0"  # type: ignore[index]
    key_types = db.scalar(settings.resolved_database_url, "SELECT MIN(key_type) FROM device")
    assert key_types == "EC P-256"
    ids = db.scalar(settings.resolved_database_url, "SELECT COUNT(*) FROM device WHERE length(device_id) = 18")
    assert ids == 4


def test_infineon_rsa_slot_and_missing_slot(cli: Cli, reels: dict[str, DemoReel], settings: Settings) -> None:
    demo = reels["infineon"]
    trust(cli, demo)
    missing = cli("reel", "import", demo.reel, "--slot", "E0E1")
    assert missing.code == 2 and "no E0E1 certificate set" in missing.err and "E0E0, E0E2" in missing.err
    cli.ok("reel", "import", demo.reel, "--slot", "E0E2")
    assert db.scalar(settings.resolved_database_url, "SELECT MIN(key_type) FROM device") == "RSA 2048"


def test_import_again_is_a_no_op_and_another_file_for_the_bid_is_refused(
        cli: Cli, reels: dict[str, DemoReel], settings: Settings, tmp_path: Path) -> None:
    demo = reels["bindery-csv"]
    trust(cli, demo)
    cli.ok("reel", "import", demo.reel)
    before = db.counts(settings.resolved_database_url)
    again = cli.ok("reel", "import", demo.reel)
    assert "already imported as batch CSV-001: nothing to do" in again.out
    assert db.counts(settings.resolved_database_url) == before
    changed = tmp_path / "changed.csv"
    changed.write_text(demo.reel.read_text().rsplit("\r\n", 2)[0] + "\r\n")  # one row fewer
    refused = cli("reel", "import", changed)
    assert refused.code == 2 and "BID CSV-001 already exists in the catalog" in refused.err
    assert db.counts(settings.resolved_database_url) == before


def test_microchip_demo_manifest(cli: Cli, reels: dict[str, DemoReel]) -> None:
    demo = reels["microchip"]
    trust(cli, demo)
    cli.ok("reel", "import", demo.reel)
    listed = cli.ok("batch", "list", "--json").json
    assert [(b["bid"], b["vendor"], b["devices"]) for b in listed] == [("MCHP-001", "microchip", 3)]  # type: ignore


def test_real_microchip_manifest_with_real_chain(cli: Cli, settings: Settings) -> None:
    cli.ok("trust", "add", *sorted(VENDOR_CA.glob("*.crt")))
    cli.ok("reel", "import", MICROCHIP_SAMPLE / "manifest_ATECC608A-MAH4I.json")
    shown = cli.ok("batch", "show", "1", "--json").json
    assert shown["model"] == "ATECC608A-MAH4I" and shown["devices"] == 2  # type: ignore[index]
    issuers = db.scalar(settings.resolved_database_url, "SELECT MIN(issuer) FROM device")
    assert "Crypto Authentication Signer 2C00" in str(issuers)


def test_espressif_csv_needs_bid_and_uses_mac(cli: Cli, tmp_path: Path, settings: Settings) -> None:
    chain = Chain("esp")
    cli.ok("trust", "add", *chain.write_ca(tmp_path / "ca"))
    rows = [(f"24:0A:C4:00:00:0{i}", f"esp-{i}", pem_of(chain.device(f"esp-{i}"))) for i in range(3)]
    reel = write_csv(tmp_path / "esp.csv", rows, header="MAC,cn,cert")
    no_bid = cli("reel", "import", reel)
    assert no_bid.code == 2 and "carries no BID: give one with --bid" in no_bid.err
    cli.ok("reel", "import", reel, "--bid", "ESP_7")
    assert db.scalar(settings.resolved_database_url, "SELECT MIN(device_id) FROM device") == "24:0A:C4:00:00:00"


def test_pem_file_and_folder_use_subject_cn(cli: Cli, tmp_path: Path, settings: Settings) -> None:
    chain = Chain("pem")
    cli.ok("trust", "add", *chain.write_ca(tmp_path / "ca"))
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("".join(pem_of(chain.device(f"cn-{i}")) for i in range(3)))
    cli.ok("reel", "import", bundle, "--bid", "PEM-1")
    folder = tmp_path / "folder"
    folder.mkdir()
    for i in range(2):
        (folder / f"d{i}.pem").write_text(pem_of(chain.device(f"folder-{i}")))
    cli.ok("reel", "import", folder, "--bid", "PEM-2")
    url = settings.resolved_database_url
    assert db.scalar(url, "SELECT COUNT(*) FROM device WHERE device_id LIKE 'cn-%'") == 3
    assert db.scalar(url, "SELECT COUNT(*) FROM device WHERE device_id LIKE 'folder-%'") == 2


def test_stored_certificate_matches_the_reel(cli: Cli, reels: dict[str, DemoReel], settings: Settings) -> None:
    demo = reels["bindery-csv"]
    trust(cli, demo)
    cli.ok("reel", "import", demo.reel)
    text = demo.reel.read_text()
    first_pem = text[text.index("-----BEGIN"):text.index("-----END CERTIFICATE-----") + 25]
    expected = fingerprint(load_certificate(first_pem.encode()))
    stored = db.scalar(settings.resolved_database_url,
                       "SELECT certificate_pem FROM device WHERE fingerprint_sha256 = :fp", fp=expected)
    assert stored is not None and fingerprint(load_certificates(str(stored).encode())[0]) == expected


def test_skip_invalid_imports_the_valid_rest(cli: Cli, tmp_path: Path, settings: Settings) -> None:
    chain, stranger = Chain("skip"), Chain("stranger")
    cli.ok("trust", "add", *chain.write_ca(tmp_path / "ca"))
    rows = [("ok-1", "SKIP", pem_of(chain.device("ok-1"))), ("bad-1", "SKIP", pem_of(stranger.device("bad-1"))),
            ("ok-2", "SKIP", pem_of(chain.device("ok-2")))]
    reel = write_csv(tmp_path / "skip.csv", rows)
    rejected = cli("reel", "import", reel)
    assert rejected.code == 2 and "row 3 (device bad-1): untrusted chain" in rejected.err
    result = cli.ok("reel", "import", reel, "--skip-invalid")
    assert "imported batch SKIP: 2 of 3 devices" in result.out and "row 3 (device bad-1)" in result.err
    assert db.counts(settings.resolved_database_url)["device"] == 2


def test_audit_event_records_the_import(cli: Cli, reels: dict[str, DemoReel], settings: Settings) -> None:
    demo = reels["bindery-csv"]
    trust(cli, demo)
    cli.ok("reel", "import", demo.reel)
    url = settings.resolved_database_url
    assert db.scalar(url, "SELECT COUNT(*) FROM audit_event WHERE action = 'reel.import' AND subject = 'CSV-001'") == 1
    assert db.scalar(url, "SELECT COUNT(*) FROM audit_event WHERE action = 'trust.add'") == 2


def test_large_reel_verifies_in_several_chunks(cli: Cli, tmp_path: Path, settings: Settings,
                                               monkeypatch: object) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setenv("BINDERY_IMPORT_CHUNK_SIZE", "7")
    chain = Chain("chunks")
    cli.ok("trust", "add", *chain.write_ca(tmp_path / "ca"))
    rows = [(f"dev-{i:03d}", "CHUNKS", pem_of(chain.device(f"dev-{i:03d}"))) for i in range(40)]
    rows[25] = ("dev-007", "CHUNKS", pem_of(chain.device("dup")))  # duplicate id in a later chunk
    reel = write_csv(tmp_path / "chunks.csv", rows)
    rejected = cli("reel", "import", reel)
    assert rejected.code == 2 and "row 27 (device dev-007): duplicate device_id, also at row 9" in rejected.err
    rows[25] = ("dev-025", "CHUNKS", pem_of(chain.device("dev-025")))
    cli.ok("reel", "import", write_csv(tmp_path / "chunks2.csv", rows))
    assert db.counts(settings.resolved_database_url)["device"] == 40
    assert not any((settings.home / "spool").iterdir()), "spool is cleaned up"
    shutil.rmtree(tmp_path / "ca")
