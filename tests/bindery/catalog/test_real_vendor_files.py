"""Certificates and files as the vendors really hand them out, through the real CLI, on both databases."""

from __future__ import annotations

import base64
import json
import shutil
import sys
from pathlib import Path

import boto3
import pytest
from cryptography import x509

from bindery.crypto import certs
from bindery.crypto.certs import der_of, fingerprint, pem_of
from bindery.reels.demo import DemoCA, DemoReel, write_demo_reel
from bindery.settings import Settings
from tests.conftest import MICROCHIP_SAMPLE, VENDOR_CA, Cli
from tests.support import db
from tests.support.aws import moto, moto_server  # noqa: F401  (fixtures)
from tests.support.world import ADMIN, make_world

SHIPPED_ANCHORS = 19


@pytest.fixture
def trustngo(tmp_path: Path) -> DemoReel:
    """A whole Trust&GO-shaped manifest: quirk device certificates, signed by a test manifest signer."""
    return write_demo_reel(out=tmp_path / "tng", bid="TNG-001", devices=5, fmt="microchip",
                           public_url="http://localhost:8000")


def _device_certificates(manifest: Path) -> list[x509.Certificate]:
    found = []
    for entry in json.loads(manifest.read_text()):
        payload = json.loads(base64.urlsafe_b64decode(entry["payload"] + "=="))
        found.append(x509.load_der_x509_certificate(base64.b64decode(payload["publicKeySet"]["keys"][0]["x5c"][0])))
    return found


def test_trustngo_manifest_with_the_printable_string_quirk_imports(cli: Cli, trustngo: DemoReel,
                                                                    settings: Settings) -> None:
    devices = _device_certificates(trustngo.reel)
    assert all(certs.lenient.quirk_offsets(der_of(c)) for c in devices)
    cli.ok("trust", "add", *trustngo.ca_files)
    result = cli.ok("reel", "import", trustngo.reel)
    assert "imported batch TNG-001: 5 of 5 devices" in result.out and "Traceback" not in result.err
    stored = db.rows(settings.resolved_database_url, "SELECT fingerprint_sha256 FROM device ORDER BY 1")
    assert [r[0] for r in stored] == sorted(fingerprint(c) for c in devices)


def test_tampered_trustngo_manifest_is_refused_and_nothing_stored(cli: Cli, trustngo: DemoReel, tmp_path: Path,
                                                                   settings: Settings) -> None:
    cli.ok("trust", "add", *trustngo.ca_files)
    entries = json.loads(trustngo.reel.read_text())
    payload = json.loads(base64.urlsafe_b64decode(entries[2]["payload"] + "=="))
    der = bytearray(base64.b64decode(payload["publicKeySet"]["keys"][0]["x5c"][0]))
    der[der.index(b"eui48_") + 7] ^= 0x01  # one bit of the MAC, inside the signed device certificate
    payload["publicKeySet"]["keys"][0]["x5c"][0] = base64.b64encode(bytes(der)).decode()
    entries[2]["payload"] = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(entries))
    before = db.counts(settings.resolved_database_url)
    refused = cli("reel", "import", tampered)
    assert refused.code == 2 and "tampered.json: entry 3" in refused.err and "signature" in refused.err
    assert db.counts(settings.resolved_database_url) == before


def test_quirk_device_certificate_tampered_after_signing_is_refused(cli: Cli, tmp_path: Path,
                                                                     settings: Settings) -> None:
    ca = DemoCA.create()
    (tmp_path / "root.pem").write_text(pem_of(ca.root))
    (tmp_path / "inter.pem").write_text(pem_of(ca.intermediate))
    cli.ok("trust", "add", tmp_path / "root.pem", tmp_path / "inter.pem")
    good = der_of(ca.trustngo_device("sn-good"))
    (tmp_path / "good.der").write_bytes(good)
    (tmp_path / "bad.der").write_bytes(good.replace(b"eui48_", b"eui48X"))
    refused = cli("reel", "import", tmp_path / "bad.der", "--bid", "BAD")
    assert refused.code == 2 and "bad.der: certificate: signature does not verify" in refused.err
    cli.ok("reel", "import", tmp_path / "good.der", "--bid", "GOOD")
    assert db.scalar(settings.resolved_database_url, "SELECT device_id FROM device") == "sn-good"


def test_trustngo_batch_round_trips_through_the_manifest_file(cli: Cli, trustngo: DemoReel, tmp_path: Path,
                                                               settings: Settings, sqlite_template: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    make_world(cli, tmp_path, {})
    cli.ok("trust", "add", *trustngo.ca_files)
    cli.ok("reel", "import", trustngo.reel)
    cli.ok("bind", "TNG-001", "--user", ADMIN)
    out = tmp_path / "tng.csv"
    cli.ok("manifest", "TNG-001", "--user", ADMIN, "--out", out)
    query = "SELECT device_id, fingerprint_sha256, certificate_pem FROM device ORDER BY 1"
    original = db.rows(settings.resolved_database_url, query)
    fresh = tmp_path / "fresh.db"
    shutil.copy(sqlite_template, fresh)
    monkeypatch.setenv("BINDERY_DATABASE_URL", f"sqlite:///{fresh}")
    cli.ok("trust", "add", *trustngo.ca_files)
    cli.ok("reel", "import", out)
    assert db.rows(f"sqlite:///{fresh}", query) == original and len(original) == 5


def test_trustngo_devices_provision_into_moto_with_aws_certificate_ids(cli: Cli, trustngo: DemoReel,
                                                                        tmp_path: Path, settings: Settings,
                                                                        moto: str,  # noqa: F811
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    make_world(cli, tmp_path, {})
    cli.ok("trust", "add", *trustngo.ca_files)
    cli.ok("reel", "import", trustngo.reel)
    client = boto3.client("iot", endpoint_url=moto, region_name="eu-west-1")
    client.create_policy(policyName="Fleet", policyDocument='{"Version": "2012-10-17", "Statement": []}')
    cli.ok("cloud-api", "add", "iot", "--user", ADMIN, "--kind", "aws-iot", "--region", "eu-west-1",
           "--policy", "Fleet", "--endpoint-url", moto)
    cli.ok("bind", "TNG-001", "--user", ADMIN, "--cloud-api", "iot")
    registered = {c["certificateId"] for c in client.list_certificates()["certificates"]}
    assert registered == {fingerprint(c) for c in _device_certificates(trustngo.reel)}
    provisioned = db.scalar(settings.resolved_database_url,
                            "SELECT COUNT(*) FROM provisioning_record WHERE status = 'provisioned'")
    assert provisioned == 5


@pytest.mark.parametrize("suffix", [".der", ".cer", ".crt"])
def test_single_der_certificate_imports(cli: Cli, tmp_path: Path, settings: Settings, suffix: str) -> None:
    ca = DemoCA.create()
    (tmp_path / "root.pem").write_text(pem_of(ca.root))
    cli.ok("trust", "add", tmp_path / "root.pem")
    device = ca.device("TrustM-0001")
    path = tmp_path / f"chip{suffix}"
    path.write_bytes(der_of(device))
    cli.ok("trust", "add", _pem(tmp_path / "inter.pem", ca.intermediate))
    result = cli.ok("reel", "import", path, "--bid", "TM-1")
    assert "imported batch TM-1: 1 of 1 devices" in result.out and "(generic, der)" in result.out
    assert db.scalar(settings.resolved_database_url, "SELECT fingerprint_sha256 FROM device") == fingerprint(device)


def _pem(path: Path, cert: x509.Certificate) -> Path:
    path.write_text(pem_of(cert))
    return path


def test_device_folder_of_mixed_files_names_ca_files_and_imports_only_devices(cli: Cli, tmp_path: Path,
                                                                               settings: Settings) -> None:
    ca = DemoCA.create()
    cli.ok("trust", "add", _pem(tmp_path / "root.pem", ca.root))
    folder = tmp_path / "reel"
    folder.mkdir()
    devices = {name: ca.device(name.split(".")[0]) for name in ["a.pem", "b.crt", "c.cer", "d.der", "e.crt"]}
    for name, cert in devices.items():
        (folder / name).write_bytes(der_of(cert) if name[0] in "cde" else pem_of(cert).encode())
    (folder / "SignerCA.crt").write_bytes(der_of(ca.intermediate))
    (folder / "RootCA.pem").write_text(pem_of(ca.root))
    (folder / "README.txt").write_text("not a certificate")
    untrusted = cli("reel", "import", folder, "--bid", "FOLDER-1")  # CA files beside devices are never trusted
    assert untrusted.code == 2 and "note: SignerCA.crt: CA certificate, not a device" in untrusted.err
    cli.ok("trust", "add", _pem(tmp_path / "inter.pem", ca.intermediate))
    result = cli.ok("reel", "import", folder, "--bid", "FOLDER-1")
    assert "imported batch FOLDER-1: 5 of 5 devices" in result.out
    for ca_file in ("SignerCA.crt", "RootCA.pem"):
        assert f"note: {ca_file}: CA certificate, not a device — add it with `bindery trust add`" in result.err
    stored = db.rows(settings.resolved_database_url, "SELECT device_id FROM device ORDER BY 1")
    assert [r[0] for r in stored] == ["a", "b", "c", "d", "e"]


def test_folder_with_a_manifest_imports_the_manifest_and_names_the_certificates(cli: Cli, tmp_path: Path,
                                                                                settings: Settings) -> None:
    folder = tmp_path / "pytrust"
    shutil.copytree(MICROCHIP_SAMPLE, folder)
    shutil.copy(VENDOR_CA / "MCHP_manifest_signer_2_Aug-15-2019_Aug-15-2020.crt", folder)
    cli.ok("trust", "add", *sorted(VENDOR_CA.glob("*.crt")))
    result = cli.ok("reel", "import", folder, "--at", "2021-06-01")
    assert "2 of 2 devices (microchip, microchip)" in result.out
    assert "note: signer_2C10.crt: CA certificate, not a device" in result.err
    assert "note: MCHP_manifest_signer_2_Aug-15-2019_Aug-15-2020.crt: CA certificate, not a device" in result.err
    assert db.scalar(settings.resolved_database_url, "SELECT COUNT(*) FROM device") == 2


def test_a_lone_ca_file_is_named_not_imported(cli: Cli, settings: Settings) -> None:
    refused = cli("reel", "import", VENDOR_CA / "OptigaTrustEccCA306.crt")
    assert refused.code == 2
    assert refused.err.strip() == ("error: OptigaTrustEccCA306.crt: CA certificate, not a device — add it with "
                                   "`bindery trust add`")
    assert db.counts(settings.resolved_database_url)["device"] == 0


def test_errors_name_the_file_once(cli: Cli, tmp_path: Path) -> None:
    ca = DemoCA.create()
    cli.ok("trust", "add", _pem(tmp_path / "root.pem", ca.root))
    reel = tmp_path / "X.crt"
    reel.write_text(pem_of(ca.device("one")) + pem_of(ca.device("two")))
    refused = cli("reel", "import", reel, "--bid", "ONCE")
    assert refused.code == 2
    assert "X.crt: certificate 1: untrusted chain" in refused.err and "X.crt: X.crt" not in refused.err


def test_trust_add_vendor_all_from_a_fresh_home(cli: Cli, settings: Settings) -> None:
    first = cli.ok("trust", "add", "--vendor", "all")
    assert first.out.count("added: ") == SHIPPED_ANCHORS
    again = cli.ok("trust", "add", "--vendor", "all")
    assert again.out.count("already trusted: ") == SHIPPED_ANCHORS
    assert db.counts(settings.resolved_database_url)["trust_anchor"] == SHIPPED_ANCHORS
    shipped = {p.name for p in Path(sys.modules["bindery.anchors"].__file__).parent.rglob("*.crt")}  # type: ignore[arg-type]
    assert shipped == {p.name for p in VENDOR_CA.glob("*.crt")}


@pytest.mark.parametrize(("vendor", "count"), [("infineon", 8), ("microchip", 10), ("stm", 1)])
def test_trust_add_one_vendor(cli: Cli, settings: Settings, vendor: str, count: int) -> None:
    assert cli.ok("trust", "add", "--vendor", vendor).out.count("added: ") == count


def test_trust_add_refuses_unknown_vendor_and_nothing(cli: Cli) -> None:
    unknown = cli("trust", "add", "--vendor", "acme")
    assert unknown.code == 2 and "unknown vendor 'acme'" in unknown.err
    nothing = cli("trust", "add")
    assert nothing.code == 2 and "name certificate files, or --vendor" in nothing.err


def test_trust_add_names_a_quirk_device_certificate_as_a_device(cli: Cli, tmp_path: Path, settings: Settings) -> None:
    device = tmp_path / "device.crt"
    device.write_text(pem_of(DemoCA.create().trustngo_device("sn-dev")))
    refused = cli("trust", "add", device)
    assert refused.code == 2
    assert refused.err.strip() == ("error: device.crt: a device certificate, not a CA or manifest signer: "
                                   "import it with `bindery reel import`")
    assert db.counts(settings.resolved_database_url)["trust_anchor"] == 0
