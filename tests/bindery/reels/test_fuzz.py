"""Fuzzing every reader with mutated real files: exit 0 or 2, never a traceback, one line naming the file,
catalog unchanged on refusal. Deterministic (derandomized), at least 2,000 cases in all."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bindery.crypto.certs import der_of, pem_of
from bindery.reels.demo import DemoCA, demo_signer, sign_manifest_entry, write_demo_reel
from tests.conftest import MICROCHIP_SAMPLE, VENDOR_CA, Cli

CASES_PER_SAMPLE = int(os.environ.get("BINDERY_FUZZ_CASES", "300"))
FUZZ = settings(max_examples=CASES_PER_SAMPLE, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


@dataclass
class Sample:
    path: Path
    args: tuple[str, ...]


@dataclass
class Rig:
    samples: dict[str, Sample]
    trust: list[Path]
    signer: Any
    signer_key: Any


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Rig:
    root = tmp_path_factory.mktemp("fuzz")
    url = "http://localhost:8000"
    infineon = write_demo_reel(out=root / "inf", bid="FZ-INF", devices=2, public_url=url)
    csv = write_demo_reel(out=root / "csv", bid="FZ-CSV", devices=3, fmt="bindery-csv", public_url=url)
    tng = write_demo_reel(out=root / "tng", bid="FZ-TNG", devices=3, fmt="microchip", public_url=url)
    ca = DemoCA.create()
    (root / "ca-root.pem").write_text(pem_of(ca.root))
    (root / "ca-inter.pem").write_text(pem_of(ca.intermediate))
    (root / "bundle.pem").write_text("".join(pem_of(ca.device(f"pem-{i}")) for i in range(3)))
    (root / "chip.der").write_bytes(der_of(ca.trustngo_device("der-0")))
    signer, key = demo_signer()
    (root / "fuzz-signer.pem").write_text(pem_of(signer))
    return Rig(
        samples={
            "microchip-real": Sample(MICROCHIP_SAMPLE / "manifest_ATECC608A-MAH4I.json", ("--at", "2021-06-01")),
            "trustngo": Sample(tng.reel, ()),
            "infineon-7z": Sample(infineon.reel, ()),
            "bindery-csv": Sample(csv.reel, ()),
            "pem": Sample(root / "bundle.pem", ("--bid", "FZ-PEM")),
            "der": Sample(root / "chip.der", ("--bid", "FZ-DER")),
        },
        trust=[*sorted(VENDOR_CA.glob("*.crt")), *infineon.ca_files, *csv.ca_files, *tng.ca_files,
               root / "ca-root.pem", root / "ca-inter.pem", root / "fuzz-signer.pem"],
        signer=signer, signer_key=key,
    )


def catalog_counts(url: str) -> tuple[int, int]:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        batches = connection.execute("SELECT COUNT(*) FROM batch").fetchone()[0]
        devices = connection.execute("SELECT COUNT(*) FROM device").fetchone()[0]
    return batches, devices


def byte_mutation(data: bytes, draw: Any) -> bytes:
    kind = draw(st.sampled_from(["flip", "truncate", "duplicate", "splice"]))
    if not data:
        return data
    if kind == "flip":
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            position = draw(st.integers(0, len(out) - 1))
            out[position] ^= draw(st.integers(1, 255))
        return bytes(out)
    if kind == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    start = draw(st.integers(0, len(data) - 1))
    end = draw(st.integers(start, min(len(data), start + 400)))
    if kind == "duplicate":
        return data[:end] + data[start:end] + data[end:]
    return data[:start] + draw(st.binary(max_size=40)) + data[end:]


JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10**20), st.text(max_size=12), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.none(), max_size=2))


def json_mutation(entries: list[dict[str, Any]], rig: Rig, draw: Any) -> bytes:
    """Structural mutations of a manifest: entries duplicated or dropped, field types changed, and signed
    payloads changed then re-signed by a trusted test signer (so the verifier, not the signature, decides)."""
    entries = json.loads(json.dumps(entries))
    index = draw(st.integers(0, len(entries) - 1))
    kind = draw(st.sampled_from(["duplicate", "drop", "field-type", "resign", "not-a-list"]))
    if kind == "duplicate":
        entries.insert(index, entries[index])
    elif kind == "drop":
        entries.pop(index)
    elif kind == "field-type":
        field = draw(st.sampled_from(["protected", "payload", "signature", "header"]))
        entries[index][field] = draw(JSON_VALUES)
    elif kind == "resign":
        payload = json.loads(base64.urlsafe_b64decode(entries[index]["payload"] + "=="))
        path = draw(st.sampled_from(["uniqueId", "groupId", "publicKeySet", "keys", "x5c", "x5c0", "x5c1"]))
        value = draw(JSON_VALUES)
        keys = payload.get("publicKeySet", {}).get("keys", [{}])
        if path in ("uniqueId", "groupId", "publicKeySet"):
            payload[path] = value
        elif path == "keys":
            payload["publicKeySet"]["keys"] = value
        elif path == "x5c":
            keys[0]["x5c"] = value
        else:
            chain = keys[0].get("x5c") or [""]
            slot = min(int(path[-1]), len(chain) - 1)
            chain[slot] = draw(st.one_of(JSON_VALUES, st.just(base64.b64encode(b"\x30\x82\x01\x00junk").decode())))
        unique = str(entries[index].get("header", {}).get("uniqueId", "x"))
        entries[index] = sign_manifest_entry(payload, unique, rig.signer, rig.signer_key)
    else:
        return json.dumps({"entries": entries}).encode()
    return json.dumps(entries).encode()


def check_outcome(catalog: Catalog, target: Path, args: tuple[str, ...]) -> None:
    before = catalog_counts(catalog.url)
    result = catalog.cli("reel", "import", target, *args)
    assert result.code in (0, 2), f"exit {result.code}: {result.err}"
    assert "Traceback" not in result.err + result.out
    if os.environ.get("BINDERY_FUZZ_LOG"):
        with open(os.environ["BINDERY_FUZZ_LOG"], "a") as log:
            log.write(f"{result.code} {result.err.strip().splitlines()[-1] if result.err.strip() else result.out}\n")
    if result.code == 2:
        last = [line for line in result.err.splitlines() if line.strip()][-1]
        assert last.startswith("error: ") and target.name in last, last
        assert catalog_counts(catalog.url) == before
    else:
        forget_batches(catalog.url)  # so that the next case's BID is new and reaches the verifier


def forget_batches(url: str) -> None:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        connection.execute("DELETE FROM device")
        connection.execute("DELETE FROM batch")


@dataclass
class Catalog:
    cli: Cli
    url: str


@pytest.fixture
def catalog(rig: Rig, tmp_path: Path, sqlite_template: Path, capsys: pytest.CaptureFixture[str],
            monkeypatch: pytest.MonkeyPatch) -> Catalog:
    """An embedded (SQLite) installation trusting every sample's anchors: the readers never depend on
    the database kind, and SQLite keeps 2,000 cases inside the time budget."""
    path = tmp_path / "fuzz.db"
    shutil.copy(sqlite_template, path)
    monkeypatch.setenv("BINDERY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BINDERY_DATABASE_URL", f"sqlite:///{path}")
    cli = Cli(capsys, monkeypatch)
    cli.ok("trust", "add", *rig.trust)
    return Catalog(cli, f"sqlite:///{path}")


@pytest.mark.parametrize("sample", ["microchip-real", "trustngo", "infineon-7z", "bindery-csv", "pem", "der"])
@FUZZ
@given(data=st.data())
def test_mutated_bytes(catalog: Catalog, rig: Rig, tmp_path: Path, sample: str, data: st.DataObject) -> None:
    source = rig.samples[sample]
    target = tmp_path / f"mutated-{sample}{source.path.suffix}"
    target.write_bytes(byte_mutation(source.path.read_bytes(), data.draw))
    check_outcome(catalog, target, source.args)


@pytest.mark.parametrize("sample", ["microchip-real", "trustngo"])
@FUZZ
@given(data=st.data())
def test_mutated_manifests(catalog: Catalog, rig: Rig, tmp_path: Path, sample: str, data: st.DataObject) -> None:
    source = rig.samples[sample]
    target = tmp_path / f"manifest-{sample}.json"
    target.write_bytes(json_mutation(json.loads(source.path.read_text()), rig, data.draw))
    check_outcome(catalog, target, source.args)
