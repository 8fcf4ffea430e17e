"""`bindery reconcile` against moto, the IoT Hub fake and a receiver: drift classified, repaired."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from bindery.receiver import ReceiverAuth, create_app
from bindery.settings import Settings
from tests.conftest import Cli
from tests.support import db
from tests.support.aws import moto, moto_server  # noqa: F401  (fixtures)
from tests.support.iothub import running_hub
from tests.support.servers import serve
from tests.support.world import ADMIN, MEMBER, OTHER, make_world

DEVICES = [f"r-{i}" for i in range(6)]


@pytest.fixture
def world(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    make_world(cli, tmp_path, {"RC1": DEVICES})
    cli.ok("bind", "RC1", "--user", MEMBER)
    return cli


def fingerprint_of(settings: Settings, device_id: str) -> str:
    return str(db.scalar(settings.resolved_database_url,
                         "SELECT fingerprint_sha256 FROM device WHERE device_id = :d", d=device_id))


def forget_record(settings: Settings, device_id: str) -> None:
    """As after a crash between the target's confirmation and the record."""
    from sqlalchemy import text

    from bindery import db as database

    with database.get_engine(settings).begin() as connection:
        connection.execute(text("UPDATE provisioning_record SET status = 'pending' WHERE device_id = "
                                "(SELECT id FROM device WHERE device_id = :d)"), {"d": device_id})


def test_aws_iot_drift_reported_then_repaired(world: Cli, moto: str, settings: Settings,  # noqa: F811
                                              tmp_path: Path) -> None:
    iot = boto3.client("iot", endpoint_url=moto, region_name="us-east-1")
    iot.create_policy(policyName="Fleet", policyDocument='{"Version": "2012-10-17", "Statement": []}')
    world.ok("cloud-api", "add", "iot", "--user", ADMIN, "--kind", "aws-iot", "--region", "us-east-1",
             "--policy", "Fleet", "--endpoint-url", moto, "--quota", "1000")
    world.ok("provision", "RC1", "--cloud-api", "iot", "--user", ADMIN)
    clean = world("reconcile", "--report", tmp_path / "clean.json")
    assert clean.code == 0 and "1 targets checked, 0 with drift" in clean.out
    gone = fingerprint_of(settings, "r-1")
    arn = f"arn:aws:iot:us-east-1:123456789012:cert/{gone}"
    iot.detach_thing_principal(thingName="r-1", principal=arn)
    iot.detach_policy(policyName="Fleet", target=arn)
    iot.update_certificate(certificateId=gone, newStatus="INACTIVE")
    iot.delete_certificate(certificateId=gone)
    iot.update_certificate(certificateId=fingerprint_of(settings, "r-2"), newStatus="INACTIVE")
    forget_record(settings, "r-3")
    before = db.counts(settings.resolved_database_url, ("provisioning_record",))
    drifted = world("reconcile", "--report", tmp_path / "drift.json")
    assert drifted.code == 3 and "1 with drift" in drifted.out
    report = json.loads((tmp_path / "drift.json").read_text())[0]
    assert (report["bid"], report["cloud_api"], report["checked"]) == ("RC1", "iot", True)
    assert (report["missing"], report["unrecorded"], report["disabled"]) == (["r-1"], ["r-3"], ["r-2"])
    assert (report["expected"], report["present"]) == (5, 5)
    assert db.counts(settings.resolved_database_url, ("provisioning_record",)) == before
    assert len(iot.list_certificates()["certificates"]) == 5, "without --repair no target changes"
    last = world.ok("reconcile", "--last", "--json").json[0]  # type: ignore[index]
    assert (last["bid"], last["cloud_api"], last["started_via"], last["trend"]) == ("RC1", "iot", "cli", [0, 3])
    assert last["findings"] == {"missing": ["r-1"], "unrecorded": ["r-3"], "disabled": ["r-2"], "mismatched": []}
    assert last["counts"]["drift"] == 3 and last["message"] == "drift: 1 missing, 1 unrecorded, 1 disabled"
    assert "r-1" in world.ok("reconcile", "--last", "--account", "Acme").out
    assert world.ok("reconcile", "--last", "--account", "Beta", "--json").json == []
    runs = world.ok("runs", "RC1", "--kind", "reconcile", "--user", MEMBER, "--json").json
    assert [r["started_by"].startswith("operator") for r in runs] == [True, True]  # type: ignore[index, union-attr]
    repaired = world("reconcile", "--repair", "--report", tmp_path / "repair.json")
    assert repaired.code == 3
    assert json.loads((tmp_path / "repair.json").read_text())[0]["repaired"] == {"recorded": 1, "reprovisioned": 1}
    after = world("reconcile", "--report", tmp_path / "after.json")
    left = json.loads((tmp_path / "after.json").read_text())[0]
    assert (left["missing"], left["unrecorded"], left["disabled"]) == ([], [], ["r-2"])
    assert after.code == 3 and len(iot.list_certificates()["certificates"]) == 6


def test_hub_thumbprint_mismatch_and_disabled(world: Cli, settings: Settings, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with running_hub(tmp_path / "tls", monkeypatch) as hub:
        world.ok("cloud-api", "add", "hub", "--user", ADMIN, "--kind", "azure-iot-hub", "--connection-string",
                 "env:HUB_CS", "--quota", "1000")
        world.ok("provision", "RC1", "--cloud-api", "hub", "--user", ADMIN)
        hub.devices["r-4"]["authentication"]["x509Thumbprint"]["primaryThumbprint"] = "AB" * 32
        hub.devices["r-5"]["status"] = "disabled"
        del hub.devices["r-0"]
        result = world("reconcile", "--account", "Acme", "--report", tmp_path / "hub.json")
    report = json.loads((tmp_path / "hub.json").read_text())[0]
    assert result.code == 3
    assert (report["missing"], report["mismatched"], report["disabled"]) == (["r-0"], ["r-4"], ["r-5"])


def test_interop_targets_are_reported_from_the_records(world: Cli, tmp_path: Path) -> None:
    with serve(create_app(ReceiverAuth(basic="bindery:pw"), tmp_path / "r.db")) as receiver:
        world.ok("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "AWS", "--credentials",
                 "bindery:pw", "--url", f"{receiver}/interop", "--quota", "1000")
        world.ok("provision", "RC1", "--cloud-api", "lab", "--user", ADMIN)
    result = world("reconcile", "--report", tmp_path / "lab.json")
    report = json.loads((tmp_path / "lab.json").read_text())[0]
    assert result.code == 0 and "records only" in result.out
    assert report["checked"] is False and report["expected"] == report["present"] == 6
    assert "cannot be asked" in report["note"]


def test_unknown_account_and_missing_report_folder(world: Cli, tmp_path: Path) -> None:
    unknown = world("reconcile", "--account", "Nope")
    assert unknown.code == 2 and "unknown account Nope" in unknown.err
    assert "0 targets checked" in world.ok("reconcile", "--account", "acme").out, "any case, as --last takes it"
    folder = world("reconcile", "--report", tmp_path / "missing" / "r.json")
    assert folder.code == 2 and "does not exist" in folder.err


def delete_certificate(iot: Any, settings: Settings, device_id: str) -> None:
    """As when someone removed the device in the AWS console: recorded provisioned, missing in the target."""
    gone = fingerprint_of(settings, device_id)
    arn = f"arn:aws:iot:us-east-1:123456789012:cert/{gone}"
    iot.detach_thing_principal(thingName=device_id, principal=arn)
    iot.detach_policy(policyName="Fleet", target=arn)
    iot.update_certificate(certificateId=gone, newStatus="INACTIVE")
    iot.delete_certificate(certificateId=gone)


def test_a_repair_that_cannot_run_leaves_the_other_targets_checked_and_repaired(
        cli: Cli, moto: str, settings: Settings, tmp_path: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A run holds one batch while reconcile --repair goes (or the batch went on offer since its check): that
    target's repair is refused and said in the report, and every other target is still checked and repaired
    (the nightly flow's tasks likewise: one refused repair does not fail the whole flow)."""
    from sqlmodel import Session

    from bindery import db as database
    from bindery.provisioning import lease

    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    monkeypatch.setenv("BINDERY_LEASE_WAIT_SECONDS", "0")
    make_world(cli, tmp_path, {"RC1": DEVICES[:3], "RC2": DEVICES[3:]})
    for bid in ("RC1", "RC2"):
        cli.ok("bind", bid, "--user", MEMBER)
    iot = boto3.client("iot", endpoint_url=moto, region_name="us-east-1")
    iot.create_policy(policyName="Fleet", policyDocument='{"Version": "2012-10-17", "Statement": []}')
    cli.ok("cloud-api", "add", "iot", "--user", ADMIN, "--kind", "aws-iot", "--region", "us-east-1",
           "--policy", "Fleet", "--endpoint-url", moto, "--quota", "1000")
    for bid in ("RC1", "RC2"):
        cli.ok("provision", bid, "--cloud-api", "iot", "--user", ADMIN)
    delete_certificate(iot, settings, "r-1")
    delete_certificate(iot, settings, "r-4")
    url = settings.resolved_database_url
    holder = lease.new_holder()  # a run of this process holds RC1 into iot
    with Session(database.get_engine(settings)) as session:
        lease.acquire(session=session, batch_id=int(str(db.scalar(url, "SELECT id FROM batch WHERE bid = 'RC1'"))),
                      api_id=int(str(db.scalar(url, "SELECT id FROM cloud_api WHERE name = 'iot'"))),
                      holder=holder, seconds=300, wait=0, what="batch RC1 into iot")
        session.commit()
    try:
        repaired = cli("reconcile", "--repair", "--report", tmp_path / "repair.json")
    finally:
        lease.forget(holder)
    assert repaired.code == 3, repaired.err
    report = {r["bid"]: r for r in json.loads((tmp_path / "repair.json").read_text())}
    assert report["RC2"]["repaired"] == {"recorded": 0, "reprovisioned": 1}
    assert report["RC2"]["not_repaired"] is None
    assert report["RC1"]["missing"] == ["r-1"] and "reprovisioned" not in report["RC1"]["repaired"]
    assert report["RC1"]["not_repaired"].startswith("batch RC1 into iot is being provisioned by another run")
    assert "RC1 into iot not repaired: batch RC1 into iot is being provisioned by another run" in repaired.out
    runs = cli.ok("reconcile", "--last", "--json").json
    assert [(r["bid"], r["status"]) for r in runs] == [("RC1", "completed"), ("RC2", "completed")]  # type: ignore[index]
    assert "; not repaired: batch RC1 into iot is being provisioned" in runs[0]["message"]  # type: ignore[index]


def test_a_batch_on_offer_is_not_repaired(world: Cli, moto: str, settings: Settings,  # noqa: F811
                                          tmp_path: Path) -> None:
    """A run crashed after the target confirmed its devices, before it recorded them: the batch looks
    unprovisioned and is offered. reconcile --repair reports the drift but leaves the batch as the receiver
    will get it (recorded provisioned, the receiver's accept would be refused for the giver's devices)."""
    iot = boto3.client("iot", endpoint_url=moto, region_name="us-east-1")
    iot.create_policy(policyName="Fleet", policyDocument='{"Version": "2012-10-17", "Statement": []}')
    world.ok("cloud-api", "add", "iot", "--user", ADMIN, "--kind", "aws-iot", "--region", "us-east-1",
             "--policy", "Fleet", "--endpoint-url", moto, "--quota", "1000")
    world.ok("provision", "RC1", "--cloud-api", "iot", "--user", ADMIN)
    for device_id in DEVICES:
        forget_record(settings, device_id)
    offered = world.ok("batch", "transfer", "RC1", "--to", "Beta", "--user", ADMIN).out
    code = offered.split("transfer code (shown once): ")[1].split()[0]
    repaired = world("reconcile", "--repair", "--report", tmp_path / "repair.json")
    assert repaired.code == 3, repaired.err
    report = json.loads((tmp_path / "repair.json").read_text())[0]
    assert len(report["unrecorded"]) == 6 and report["repaired"] == {}
    assert report["not_repaired"] == ("batch RC1 is on offer to another account: nothing is changed on it until "
                                      "the offer ends"), "no CLI command: the console's page says it too"
    assert db.scalar(settings.resolved_database_url,
                     "SELECT COUNT(*) FROM provisioning_record WHERE status = 'provisioned'") == 0
    world.ok("batch", "accept", code, "--user", OTHER)


def test_a_target_whose_batch_changed_hands_since_the_list_is_skipped(world: Cli, tmp_path: Path) -> None:
    """The nightly flow lists its targets first, then checks each in a task: a batch accepted by another
    account in between is not the lister's any more. Its task says so and ends well (a failed task failed
    the whole flow, and no account got its report)."""
    from bindery.runs import Origin
    from bindery.tasks.reconcile import find_targets, reconcile_target

    with serve(create_app(ReceiverAuth(basic="bindery:pw"), tmp_path / "r.db")) as receiver:
        world.ok("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "AWS", "--credentials",
                 "bindery:pw", "--url", f"{receiver}/interop", "--quota", "1000")
        world.ok("provision", "RC1", "--cloud-api", "lab", "--user", ADMIN)
    world.ok("deprovision", "RC1", "--cloud-api", "lab", "--forget", "--user", ADMIN)
    targets = find_targets.fn(None)
    assert targets == [("Acme", "RC1", "lab")]
    offered = world.ok("batch", "transfer", "RC1", "--to", "Beta", "--user", ADMIN).out
    world.ok("batch", "accept", offered.split("transfer code (shown once): ")[1].split()[0], "--user", OTHER)
    origin = Origin("schedule", None, None)
    assert [reconcile_target.fn(*target, False, origin) for target in targets] == [None]
