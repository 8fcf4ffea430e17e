"""Every kind of bad reel: exit code 2, one clear line naming file, entry and reason, nothing stored."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import py7zr
import pytest

from bindery.crypto.certs import b64url, b64url_decode, der_of, pem_of
from bindery.reels.demo import DemoCA, demo_signer, manifest_payload, sign_manifest_entry
from bindery.settings import Settings
from tests.conftest import Cli
from tests.support import db
from tests.support.certs import NOW, Chain, cert, key, write_csv
from tests.support.sevenzip import write_with_names


@dataclass
class Env:
    tmp: Path
    chain: Chain
    cli: Cli

    def csv(self, rows: list[tuple[str, str, str]], name: str = "reel.csv", header: str | None = None) -> Path:
        if header is None:
            return write_csv(self.tmp / name, rows)
        return write_csv(self.tmp / name, rows, header=header)

    def good(self, device_id: str) -> tuple[str, str, str]:
        return (device_id, "BAD-1", pem_of(self.chain.device(device_id)))


Case = Callable[[Env], list[str | Path]]


def empty_file(env: Env) -> list[str | Path]:
    (env.tmp / "empty.csv").write_bytes(b"")
    return ["reel", "import", env.tmp / "empty.csv"]


def missing_file(env: Env) -> list[str | Path]:
    return ["reel", "import", env.tmp / "nope.7z"]


def folder_for_a_file_format(env: Env) -> list[str | Path]:
    (env.tmp / "dir").mkdir()
    return ["reel", "import", env.tmp / "dir", "--format", "bindery-csv"]


def truncated_7z(env: Env) -> list[str | Path]:
    good = env.tmp / "good.7z"
    with py7zr.SevenZipFile(good, "w") as archive:
        archive.writestr(pem_of(env.chain.device("0A0B")), "R1_0000_E0E0_Certs.7z")
    data = good.read_bytes()
    (env.tmp / "cut.7z").write_bytes(data[: len(data) // 2])
    return ["reel", "import", env.tmp / "cut.7z"]


def truncated_json(env: Env) -> list[str | Path]:
    (env.tmp / "cut.json").write_text('[{"protected": "eyJ", "payload": "e30", "sig')
    return ["reel", "import", env.tmp / "cut.json"]


def unknown_format(env: Env) -> list[str | Path]:
    (env.tmp / "notes.txt").write_text("serial;cert\n1;abc\n")
    return ["reel", "import", env.tmp / "notes.txt"]


def malformed_pem(env: Env) -> list[str | Path]:
    pem = pem_of(env.chain.device("d1"))
    broken = pem.replace(pem.splitlines()[3], "!!!not base64!!!")
    return ["reel", "import", env.csv([env.good("d0"), ("d1", "BAD-1", broken)])]


def base64_not_a_certificate(env: Env) -> list[str | Path]:
    junk = base64.b64encode(b"\x30\x03\x02\x01\x05" * 20).decode()
    return ["reel", "import", env.csv([env.good("d0"), ("d1", "BAD-1", junk)])]


def untrusted_chain(env: Env) -> list[str | Path]:
    return ["reel", "import", env.csv([env.good("d0"), ("d1", "BAD-1", pem_of(Chain("other").device("d1")))])]


def forged_signature(env: Env) -> list[str | Path]:
    forged = cert("d1", key(), f"Inter {env.chain.tag}", key(), ca=False)
    return ["reel", "import", env.csv([env.good("d0"), ("d1", "BAD-1", pem_of(forged))])]


def expired(env: Env) -> list[str | Path]:
    return ["reel", "import", env.csv([env.good("d0")]), "--at", (NOW + timedelta(days=4000)).isoformat()]


def not_yet_valid(env: Env) -> list[str | Path]:
    return ["reel", "import", env.csv([env.good("d0")]), "--at", (NOW - timedelta(days=10)).isoformat()]


def issuer_not_a_ca(env: Env) -> list[str | Path]:
    """A Microchip entry whose carried issuer (x5c[1]) is signed by a trusted root but is no CA."""
    signer, signer_key = demo_signer()
    (env.tmp / "signer.pem").write_text(pem_of(signer))
    env.cli.ok("trust", "add", env.tmp / "signer.pem")
    leaf_key = key()
    leaf = cert("Leaf", leaf_key, f"Root {env.chain.tag}", env.chain.root_key, ca=False)
    device = cert("sn01", key(), "Leaf", leaf_key, ca=False)
    entry = sign_manifest_entry(manifest_payload("M-3", "01", device, leaf), "01", signer, signer_key)
    (env.tmp / "noca.json").write_text(json.dumps([entry]))
    return ["reel", "import", env.tmp / "noca.json"]


def duplicate_id_in_reel(env: Env) -> list[str | Path]:
    return ["reel", "import", env.csv([env.good("d0"), env.good("d0")])]


def duplicate_fingerprint_in_reel(env: Env) -> list[str | Path]:
    pem = pem_of(env.chain.device("d0"))
    return ["reel", "import", env.csv([("d0", "BAD-1", pem), ("d1", "BAD-1", pem)])]


def bad_bid_chars(env: Env) -> list[str | Path]:
    return ["reel", "import", env.csv([("d0", "BAD 1;", pem_of(env.chain.device("d0")))])]


def bid_too_long(env: Env) -> list[str | Path]:
    return ["reel", "import", env.csv([env.good("d0")]), "--bid", "B" * 65]


def member_with_parent_path(env: Env) -> list[str | Path]:
    write_with_names(env.tmp / "evil.7z", {"R1_0000_E0E0_Certs.7z": b"x", "../escape.pem": b"y"})
    return ["reel", "import", env.tmp / "evil.7z"]


def member_with_absolute_path(env: Env) -> list[str | Path]:
    write_with_names(env.tmp / "evil.7z", {"/etc/R1_0000_E0E0_Certs.7z": b"x"})
    return ["reel", "import", env.tmp / "evil.7z"]


def csv_missing_column(env: Env) -> list[str | Path]:
    path = env.tmp / "missing.csv"
    path.write_text("device_id,certificate\r\nd0,abc\r\n")
    return ["reel", "import", path, "--format", "bindery-csv"]


def csv_ragged_row(env: Env) -> list[str | Path]:
    path = env.csv([env.good("d0")])
    with path.open("a") as handle:
        handle.write("d1,BAD-1\r\n")
    return ["reel", "import", path]


CASES: dict[str, tuple[Case, str]] = {
    "empty file": (empty_file, "empty.csv: file is empty"),
    "missing file": (missing_file, "nope.7z: no such file"),
    "folder for a file format": (folder_for_a_file_format, "dir: not a file"),
    "truncated 7z": (truncated_7z, "cut.7z: truncated or corrupt 7z archive"),
    "truncated JSON": (truncated_json, "cut.json: malformed JSON manifest"),
    "unknown format": (unknown_format, "notes.txt: unknown reel format"),
    "malformed PEM": (malformed_pem, "reel.csv: row 3 (device d1): malformed PEM certificate"),
    "base64 that is not a certificate": (base64_not_a_certificate, "reel.csv: row 3 (device d1): not a certificate"),
    "untrusted chain": (untrusted_chain, "reel.csv: row 3 (device d1): untrusted chain: issuer 'Inter other'"),
    "forged signature": (forged_signature, "row 3 (device d1): signature does not verify with the key of issuer"),
    "expired": (expired, "reel.csv: row 2 (device d0): device certificate has expired"),
    "not yet valid": (not_yet_valid, "reel.csv: row 2 (device d0): device certificate is not yet valid"),
    "issuer without CA=true": (issuer_not_a_ca, "noca.json: entry 1 (device 01): issuer 'Leaf' is not a CA"),
    "duplicate device_id in reel": (duplicate_id_in_reel, "row 3 (device d0): duplicate device_id, also at row 2"),
    "duplicate fingerprint in reel": (duplicate_fingerprint_in_reel,
                                      "row 3 (device d1): duplicate certificate (fingerprint), also at row 2"),
    "BID with bad characters": (bad_bid_chars, "reel.csv: invalid BID 'BAD 1;'"),
    "BID too long": (bid_too_long, "invalid BID 'BBBB"),
    "7z member with ../": (member_with_parent_path, "evil.7z: archive member '../escape.pem' has an unsafe path"),
    "7z member with absolute path": (member_with_absolute_path, "evil.7z: archive member '/etc/R1_0000_E0E0_Certs.7z'"),
    "CSV missing column": (csv_missing_column, "missing.csv: header must be device_id,group_id,certificate "
                                               "(missing column(s) group_id)"),
    "CSV ragged row": (csv_ragged_row, "reel.csv: row 3: expected 3 fields, found 2"),
}


@pytest.fixture
def env(cli: Cli, tmp_path: Path) -> Env:
    chain = Chain("bad")
    cli.ok("trust", "add", *chain.write_ca(tmp_path / "ca"))
    return Env(tmp_path, chain, cli)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_reel_is_refused_with_one_clear_line(case: str, env: Env, settings: Settings) -> None:
    build, expected = CASES[case]
    args = build(env)
    before = db.counts(settings.resolved_database_url)
    result = env.cli(*args)
    assert result.code == 2, result.err
    assert expected in result.err
    assert result.err.strip().splitlines()[-1].startswith("error: ")
    assert db.counts(settings.resolved_database_url) == before


def test_non_ca_issuer_cannot_be_a_trust_anchor_nor_chain_a_reel(env: Env, settings: Settings) -> None:
    leaf_key = key()
    leaf = cert("Leaf", leaf_key, f"Root {env.chain.tag}", env.chain.root_key, ca=False)
    env.cli.ok("trust", "add", env.tmp / "ca" / f"root-{env.chain.tag}.pem")
    (env.tmp / "leaf.pem").write_text(pem_of(leaf))
    # an issuer that is not a CA cannot even be stored as a trust anchor
    refused = env.cli("trust", "add", env.tmp / "leaf.pem")
    assert refused.code == 2 and "not a CA" in refused.err
    device = cert("d1", key(), "Leaf", leaf_key, ca=False)
    reel = env.tmp / "dev.pem"
    reel.write_text(pem_of(device))
    result = env.cli("reel", "import", reel, "--bid", "NOCA")
    assert result.code == 2 and "untrusted chain: issuer 'Leaf'" in result.err


def test_duplicates_against_the_catalog(env: Env, settings: Settings) -> None:
    first = env.csv([env.good("d0"), env.good("d1")], name="first.csv")
    env.cli.ok("reel", "import", first)
    pem = db.scalar(settings.resolved_database_url, "SELECT certificate_pem FROM device WHERE device_id = 'd1'")
    second = write_csv(env.tmp / "second.csv", [("d0", "BAD-2", pem_of(env.chain.device("x"))),
                                                ("d9", "BAD-2", str(pem))])
    before = db.counts(settings.resolved_database_url)
    result = env.cli("reel", "import", second)
    assert result.code == 2
    assert "second.csv: row 2 (device d0): device_id is already in the catalog" in result.err
    assert "second.csv: row 3 (device d9): certificate is already in the catalog under another device_id" in result.err
    assert db.counts(settings.resolved_database_url) == before


def _manifest(env: Env, edit: Callable[[list[dict]], None], trust_signer: bool = True) -> Path:
    ca = DemoCA.create()
    env.cli.ok("trust", "add", *_write(env.tmp, {"r.pem": pem_of(ca.root), "i.pem": pem_of(ca.intermediate)}))
    signer, signer_key = demo_signer()
    if trust_signer:
        env.cli.ok("trust", "add", *_write(env.tmp, {"s.pem": pem_of(signer)}))
    entries = [sign_manifest_entry(manifest_payload("M-1", uid, ca.device(f"sn{uid}"), ca.intermediate),
                                   uid, signer, signer_key) for uid in ("0123aa", "0123bb")]
    edit(entries)
    path = env.tmp / "manifest.json"
    path.write_text(json.dumps(entries))
    return path


def _write(folder: Path, files: dict[str, str]) -> list[Path]:
    for name, text in files.items():
        (folder / name).write_text(text)
    return [folder / name for name in files]


def _tamper(entries: list[dict]) -> None:
    payload = json.loads(b64url_decode(entries[1]["payload"]))
    payload["partNumber"] = "FORGED"
    entries[1]["payload"] = b64url(json.dumps(payload).encode())


def _bad_signature(entries: list[dict]) -> None:
    raw = bytearray(b64url_decode(entries[1]["signature"]))
    raw[5] ^= 0xFF
    entries[1]["signature"] = b64url(bytes(raw))


@pytest.mark.parametrize(("edit", "expected"), [
    (_tamper, "manifest.json: entry 2 (device 0123bb): manifest signature does not verify"),
    (_bad_signature, "manifest.json: entry 2 (device 0123bb): manifest signature does not verify"),
])
def test_microchip_entry_tampered_or_badly_signed(env: Env, settings: Settings, edit: Callable[[list[dict]], None],
                                                   expected: str) -> None:
    path = _manifest(env, edit)
    before = db.counts(settings.resolved_database_url)
    result = env.cli("reel", "import", path)
    assert result.code == 2 and expected in result.err
    assert db.counts(settings.resolved_database_url) == before


def test_microchip_unknown_kid(env: Env, settings: Settings) -> None:
    path = _manifest(env, lambda entries: None, trust_signer=False)
    result = env.cli("reel", "import", path)
    assert result.code == 2 and "entry 1 (device 0123aa): unknown manifest signer kid=" in result.err
    assert db.counts(settings.resolved_database_url)["batch"] == 0


def test_microchip_entry_without_certificate_or_with_junk_x5c(env: Env, settings: Settings) -> None:
    ca = DemoCA.create()
    signer, signer_key = demo_signer()
    env.cli.ok("trust", "add", *_write(env.tmp, {"r.pem": pem_of(ca.root), "i.pem": pem_of(ca.intermediate),
                                                  "s.pem": pem_of(signer)}))
    good = manifest_payload("M-2", "0123cc", ca.device("sn0123cc"), ca.intermediate)
    no_cert = json.loads(json.dumps(good))
    no_cert["uniqueId"] = "0123dd"
    del no_cert["publicKeySet"]["keys"][0]["x5c"]
    junk = json.loads(json.dumps(good))
    junk["uniqueId"] = "0123ee"
    junk["publicKeySet"]["keys"][0]["x5c"] = [base64.b64encode(b"junk" * 10).decode(),
                                              base64.b64encode(der_of(ca.intermediate)).decode()]
    entries = [sign_manifest_entry(p, str(p["uniqueId"]), signer, signer_key) for p in (good, no_cert, junk)]
    path = env.tmp / "m2.json"
    path.write_text(json.dumps(entries))
    result = env.cli("reel", "import", path)
    assert result.code == 2
    assert "m2.json: entry 2 (device 0123dd): entry has no certificate" in result.err
    assert "m2.json: entry 3 (device 0123ee): x5c entry is base64 but not a DER certificate" in result.err
    assert db.counts(settings.resolved_database_url)["device"] == 0
