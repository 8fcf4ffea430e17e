"""Kind azure-dps from the CLI with vendor-shaped demo reels, into the HTTPS stand-in of the DPS service API:
add (checked), provision, rerun, faults, reconcile and repair, deprovision, secrets, bad input."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from bindery import db as database
from bindery.reels.demo import DemoReel
from bindery.settings import Settings
from tests.conftest import Cli
from tests.support import db
from tests.support.certs import Chain
from tests.support.dps import HOST, KEY, Dps, Fault, running_dps
from tests.support.world import ADMIN, MEMBER, make_world

BIDS = ("CSV-001", "MCHP-001")  # 4 + 3 devices; Microchip's CNs are "sn<chip>", not the device ids


@pytest.fixture
def dps(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reels: dict[str, DemoReel]) -> Iterator[Dps]:
    """Acme with the CSV and Microchip demo reels bound; the stand-in trusted through SSL_CERT_FILE, its
    connection string in DPS_CS and its URL in DPS_URL."""
    monkeypatch.setenv("BINDERY_RETRY_BASE_SECONDS", "0.05")
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")  # the stand-in is on loopback
    make_world(cli, tmp_path, {})
    for name in ("bindery-csv", "microchip"):
        cli.ok("trust", "add", *reels[name].ca_files)
        cli.ok("reel", "import", reels[name].reel)
    for bid in BIDS:
        cli.ok("bind", bid, "--user", MEMBER)
    with running_dps(tmp_path / "dps-tls") as (state, url):
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "dps-tls" / "ca.pem"))
        monkeypatch.setenv("DPS_CS", state.connection_string())
        monkeypatch.setenv("DPS_URL", url)
        yield state


def add(cli: Cli, *extra: str, name: str = "dps") -> None:
    import os

    cli.ok("cloud-api", "add", name, "--user", ADMIN, "--kind", "azure-dps", "--connection-string", "env:DPS_CS",
           "--endpoint-url", os.environ["DPS_URL"], *extra)


def provision_all(cli: Cli) -> None:
    for bid in BIDS:
        cli.ok("provision", bid, "--cloud-api", "dps", "--user", ADMIN)


def cns(settings: Settings) -> dict[str, str]:
    return {str(r[0]): str(r[1]) for r in db.rows(settings.resolved_database_url,
                                                  "SELECT device_id, subject_cn FROM device")}


def statuses(settings: Settings) -> list[str]:
    return sorted(str(r[0]) for r in db.rows(settings.resolved_database_url, "SELECT status FROM provisioning_record"))


def test_provision_then_rerun_writes_nothing_and_the_secret_stays_hidden(
        dps: Dps, cli: Cli, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    add(cli, "--iot-hub", "acme-eu.azure-devices.net", "--allocation", "hashed")
    assert dps.calls == ["POST /enrollments/query"], "add checks the target with one harmless call"
    provision_all(cli)
    names = cns(settings)
    assert sorted(dps.enrollments) == sorted(cn.lower() for cn in names.values())
    assert any(cn.startswith("sn") for cn in names.values()), "Microchip's registration ids are its CNs"
    assert {e["iotHubHostName"] for e in dps.enrollments.values()} == {"acme-eu.azure-devices.net"}
    assert statuses(settings) == ["provisioned"] * 7
    writes = dps.calls.count("POST /enrollments")
    assert writes == 2  # one bulk call per batch: 4 and 3 enrollments
    rerun = cli.ok("provision", "CSV-001", "--cloud-api", "dps", "--user", ADMIN)
    assert "all 4 devices already provisioned" in rerun.out and dps.calls.count("POST /enrollments") == writes
    shown = cli.ok("cloud-api", "show", "dps", "--user", ADMIN, "--json").json
    assert shown["host_name"] == HOST and shown["connection_string"] != dps.connection_string()  # type: ignore
    url = settings.resolved_database_url
    stored = " ".join(str(v) for table in ("cloud_api", "audit_event") for row in
                      db.rows(url, f"SELECT * FROM {table}") for v in row)
    assert KEY not in stored and KEY not in caplog.text and KEY not in cli("cloud-api", "list", "--user", ADMIN).out


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("value", "says"), [
    (f"HostName={HOST};SharedAccessKeyName=provisioningserviceowner", "missing SharedAccessKey"),
    (f"HostName=acme.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey={KEY}", "is an IoT Hub"),
    (f"HostName={HOST};SharedAccessKeyName=p;SharedAccessKey=!!{KEY}", "SharedAccessKey is not base64"),
])
def test_bad_connection_strings_are_one_line_exit_2_and_nothing_is_stored(
        dps: Dps, cli: Cli, monkeypatch: pytest.MonkeyPatch, value: str, says: str) -> None:
    monkeypatch.setenv("DPS_CS", value)
    result = cli("cloud-api", "add", "dps", "--user", ADMIN, "--kind", "azure-dps", "--connection-string",
                 "env:DPS_CS")
    assert result.code == 2 and result.err.strip().startswith("error: --connection-string: ") and says in result.err
    assert len(result.err.strip().splitlines()) == 1 and KEY not in result.err
    assert dps.calls == [] and "dps" not in cli.ok("cloud-api", "list", "--user", ADMIN).out


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_wrong_key_or_bad_options_store_nothing(dps: Dps, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DPS_CS", dps.connection_string(key=base64.b64encode(b"w" * 32).decode()))
    import os

    wrong = cli("cloud-api", "add", "dps", "--user", ADMIN, "--kind", "azure-dps", "--connection-string",
                "env:DPS_CS", "--endpoint-url", os.environ["DPS_URL"])
    assert wrong.code == 1 and "wrong key or policy" in wrong.err and len(wrong.err.strip().splitlines()) == 1
    for flags, says in ((["--allocation", "static"], "--iot-hub is required with the static allocation policy"),
                        (["--allocation", "nearest"], "--allocation"),
                        (["--provisioning-status", "maybe"], "--provisioning-status"),
                        (["--endpoint-url", "http://127.0.0.1:1"], "must be an https URL")):
        bad = cli("cloud-api", "add", "dps", "--user", ADMIN, "--kind", "azure-dps", "--connection-string",
                  "env:DPS_CS", "--no-check", *flags)
        assert bad.code == 2 and says in bad.err, bad.err
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "0")  # the endpoint is held to the rule every kind keeps
    private = cli("cloud-api", "add", "dps", "--user", ADMIN, "--kind", "azure-dps", "--connection-string",
                  "env:DPS_CS", "--no-check", "--endpoint-url", "https://10.0.0.7:8443")
    assert private.code == 2 and "--endpoint-url" in private.err, private.err
    assert "dps" not in cli.ok("cloud-api", "list", "--user", ADMIN).out


def test_faults_are_retried_and_every_device_is_enrolled_once(dps: Dps, cli: Cli, settings: Settings) -> None:
    add(cli, "--chunk-size", "2")
    dps.faults.extend([Fault(503), Fault(drop="after"), None, Fault(drop="before"),
                       Fault(429, headers={"Retry-After": "1"}), Fault(500)])
    provision_all(cli)
    assert statuses(settings) == ["provisioned"] * 7
    assert len(dps.created_at) == 7 == len(dps.enrollments), "each enrollment created once"
    assert dps.faults == []


def drift_behind_bindery(dps: Dps, names: dict[str, str]) -> dict[str, str]:
    """One enrollment deleted, one disabled, one given another certificate (under its registration id)."""
    gone, off, swapped = sorted(names)[:3]
    del dps.enrollments[names[gone].lower()]
    dps.enrollments[names[off].lower()]["provisioningStatus"] = "disabled"
    other = Chain("impostor").device(names[swapped])
    from bindery.crypto.certs import pem_of

    record, _error = dps.enroll({"registrationId": names[swapped], "attestation": {
        "type": "x509", "x509": {"clientCertificates": {"primary": {"certificate": pem_of(other)}}}}})
    dps.enrollments[names[swapped].lower()] = record  # type: ignore[assignment]
    return {"missing": gone, "disabled": off, "mismatched": swapped}


def test_reconcile_finds_drift_made_behind_bindery_and_repair_reenrolls_the_missing(
        dps: Dps, cli: Cli, settings: Settings, tmp_path: Path) -> None:
    add(cli)
    provision_all(cli)
    names = cns(settings)
    made = drift_behind_bindery(dps, names)
    unrecorded = sorted(set(names) - set(made.values()))[0]
    with database.get_engine(settings).begin() as connection:
        connection.execute(text("UPDATE provisioning_record SET status = 'pending' WHERE device_id = "
                                "(SELECT id FROM device WHERE device_id = :d)"), {"d": unrecorded})
    result = cli("reconcile", "--report", tmp_path / "drift.json")
    assert result.code == 3
    found = {r["bid"]: r for r in json.loads((tmp_path / "drift.json").read_text())}
    merged = {kind: sorted(d for r in found.values() for d in r[kind])
              for kind in ("missing", "unrecorded", "disabled", "mismatched")}
    assert merged == {"missing": [made["missing"]], "unrecorded": [unrecorded], "disabled": [made["disabled"]],
                      "mismatched": [made["mismatched"]]}
    assert all(r["checked"] for r in found.values())
    swapped_before = dps.enrollments[names[made["mismatched"]].lower()]
    cli("reconcile", "--repair", "--report", tmp_path / "repair.json")
    assert names[made["missing"]].lower() in dps.enrollments, "the missing one is enrolled again"
    assert dps.enrollments[names[made["mismatched"]].lower()] == swapped_before, "mismatched is left for a person"
    cli("reconcile", "--report", tmp_path / "after.json")
    after = json.loads((tmp_path / "after.json").read_text())
    left = {kind: sorted(d for r in after for d in r[kind]) for kind in ("missing", "unrecorded", "mismatched")}
    assert left == {"missing": [], "unrecorded": [], "mismatched": [made["mismatched"]]}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_deprovision_deletes_in_bulk_and_keeps_an_enrollment_with_another_certificate(
        dps: Dps, cli: Cli, settings: Settings) -> None:
    add(cli)
    provision_all(cli)
    names = cns(settings)
    csv_devices = sorted(d for d, cn in names.items() if not cn.startswith("sn"))
    del dps.enrollments[names[csv_devices[0]].lower()]  # gone already: counts as removed
    other = Chain("impostor").device(names[csv_devices[1]])
    from bindery.crypto.certs import pem_of

    record, _error = dps.enroll({"registrationId": names[csv_devices[1]], "attestation": {
        "type": "x509", "x509": {"clientCertificates": {"primary": {"certificate": pem_of(other)}}}}})
    dps.enrollments[names[csv_devices[1]].lower()] = record  # type: ignore[assignment]
    dps.calls.clear()
    result = cli("deprovision", "CSV-001", "--cloud-api", "dps", "--user", ADMIN)
    assert "3 devices removed from dps, 1 failed" in result.out
    assert f"not removed: {csv_devices[1]}: enrollment {names[csv_devices[1]]} holds another certificate" in result.err
    assert dps.calls.count("POST /enrollments") == 1
    assert sorted(dps.enrollments) == sorted([names[csv_devices[1]].lower(),
                                              *(cn.lower() for cn in names.values() if cn.startswith("sn"))])
    assert statuses(settings).count("removed") == 3
