"""Provisioning from the CLI into real peers: the reference receiver, a flaky proxy, moto."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from bindery.receiver import ReceiverAuth, create_app
from bindery.settings import Settings
from tests.conftest import Cli
from tests.support import db
from tests.support.aws import moto, moto_server  # noqa: F401  (fixtures)
from tests.support.flaky import FaultLog, create_flaky_proxy
from tests.support.servers import held, serve
from tests.support.world import ADMIN, MEMBER, OTHER, make_world

DEVICES = {"P001": [f"p1-{i:03d}" for i in range(25)], "P002": [f"p2-{i:03d}" for i in range(5)]}


@pytest.fixture
def world(cli: Cli, tmp_path: Path, receiver: str, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    monkeypatch.setenv("BINDERY_PROVISION_CHUNK_SIZE", "4")
    monkeypatch.setenv("BINDERY_RETRY_BASE_SECONDS", "0.05")
    make_world(cli, tmp_path, DEVICES)
    cli.ok("bind", "P001", "--user", MEMBER)
    cli.ok("bind", "P002", "--user", MEMBER)
    add_receiver(cli, "lab", receiver)
    return cli


def add_receiver(cli: Cli, name: str, url: str, user: str = ADMIN) -> None:
    cli.ok("cloud-api", "add", name, "--user", user, "--kind", "other", "--type", "private cloud",
           "--credentials", "bindery:pw", "--url", f"{url}/interop", "--quota", "1000")


def record_states(settings: Settings, api: str) -> dict[str, int]:
    rows = db.rows(settings.resolved_database_url,
                   "SELECT r.status, COUNT(*) FROM provisioning_record r JOIN cloud_api c ON c.id = r.cloud_api_id "
                   "WHERE c.name = :api GROUP BY r.status", api=api)
    return {str(status): int(count) for status, count in rows}  # type: ignore[call-overload]


def test_provision_now_then_again_provisions_each_device_once(world: Cli, receiver: str, settings: Settings) -> None:
    first = world.ok("provision", "P001", "--cloud-api", "lab", "--user", ADMIN)
    assert "batch P001 -> lab: 25 of 25 devices provisioned (0 already present), 0 failed" in first.out
    assert held(receiver) == DEVICES["P001"]
    again = world.ok("provision", "P001", "--cloud-api", "lab", "--user", ADMIN)
    assert "nothing to do: all 25 devices already provisioned in lab" in again.out
    assert held(receiver) == DEVICES["P001"]
    shown = world.ok("batch", "show", "P001", "--user", MEMBER, "--json").json
    assert shown["provisioned"] == {"lab": 25}  # type: ignore[index]
    assert record_states(settings, "lab") == {"provisioned": 25}
    refs = db.rows(settings.resolved_database_url, "SELECT DISTINCT endpoint FROM provisioning_record")
    assert refs == [("mqtt.receiver.local:8883",)]


def test_one_batch_into_two_targets(world: Cli, receiver: str, tmp_path: Path, settings: Settings) -> None:
    with serve(create_app(ReceiverAuth(basic="bindery:pw"), tmp_path / "second.db")) as second:
        add_receiver(world, "lab2", second)
        world.ok("provision", "P002", "--cloud-api", "lab", "--user", ADMIN)
        world.ok("provision", "P002", "--cloud-api", "lab2", "--user", ADMIN)
        assert held(receiver) == held(second) == DEVICES["P002"]
    shown = world.ok("batch", "show", "P002", "--user", ADMIN, "--json").json
    assert shown["provisioned"] == {"lab": 5, "lab2": 5}  # type: ignore[index]


def test_set_target_provisions_nothing_then_provision_uses_it(world: Cli, receiver: str) -> None:
    missing = world("provision", "P002", "--user", ADMIN)
    assert missing.code == 2 and "has no target Product Cloud API: give --cloud-api NAME" in missing.err
    world.ok("batch", "set-target", "P002", "--cloud-api", "lab", "--user", ADMIN)
    assert held(receiver) == []
    assert world.ok("batch", "show", "P002", "--user", ADMIN, "--json").json["target"] == "lab"  # type: ignore
    world.ok("provision", "P002", "--user", ADMIN)
    assert held(receiver) == DEVICES["P002"]


def test_roles_and_ownership(world: Cli, receiver: str, settings: Settings) -> None:
    member = world("provision", "P002", "--cloud-api", "lab", "--user", MEMBER)
    assert member.code == 1 and "only admins may provision devices" in member.err
    other = world("provision", "P002", "--cloud-api", "lab", "--user", OTHER)
    assert other.code == 2 and "unknown BID P002" in other.err
    target = world("batch", "set-target", "P002", "--cloud-api", "lab", "--user", MEMBER)
    assert target.code == 1
    assert held(receiver) == [] and record_states(settings, "lab") == {}


def test_bind_with_cloud_api_is_for_admins(world: Cli, receiver: str, settings: Settings) -> None:
    world.ok("unbind", "P002", "--user", ADMIN)
    refused = world("bind", "P002", "--cloud-api", "lab", "--user", MEMBER)
    assert refused.code == 1 and "only admins may pick a Product Cloud API" in refused.err
    assert world.ok("batch", "list", "--user", ADMIN, "--json").json[0]["bid"] == "P001"  # type: ignore[index]
    bound = world.ok("bind", "P002", "--cloud-api", "lab", "--user", ADMIN)
    assert "bound batch P002: 5 devices" in bound.out and "5 of 5 devices provisioned" in bound.out
    assert held(receiver) == DEVICES["P002"]


def test_auto_provision_on_and_off(world: Cli, receiver: str) -> None:
    world.ok("unbind", "P001", "--user", ADMIN)
    world.ok("unbind", "P002", "--user", ADMIN)
    refused = world("settings", "auto-provision", "on", "--cloud-api", "lab", "--user", MEMBER)
    assert refused.code == 1
    world.ok("settings", "auto-provision", "on", "--cloud-api", "lab", "--user", ADMIN)
    assert world.ok("settings", "show", "--user", MEMBER).json == {  # type: ignore[comparison-overlap]
        "account": "Acme", "auto_provision": True, "default_cloud_api": "lab"}
    auto = world.ok("bind", "P002", "--user", MEMBER)
    assert "5 of 5 devices provisioned" in auto.out and held(receiver) == DEVICES["P002"]
    assert world.ok("batch", "show", "P002", "--user", MEMBER, "--json").json["target"] == "lab"  # type: ignore
    world.ok("settings", "auto-provision", "off", "--user", ADMIN)
    plain = world.ok("bind", "P001", "--user", MEMBER)
    assert "provisioned" not in plain.out and held(receiver) == DEVICES["P002"]


def test_unbind_refuses_provisioned_batches(world: Cli) -> None:
    world.ok("provision", "P002", "--cloud-api", "lab", "--user", ADMIN)
    refused = world("unbind", "P002", "--user", ADMIN)
    assert refused.code == 1 and "has provisioned devices (5 in lab): deprovision them first" in refused.err


def test_thirty_percent_faults_still_end_exactly_once(world: Cli, receiver: str, settings: Settings,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_HTTP_TIMEOUT", "0.5")
    monkeypatch.setenv("BINDERY_PROVISION_RETRIES", "12")
    faults = FaultLog(rate=0.3)
    with serve(create_flaky_proxy(receiver, faults)) as flaky:
        add_receiver(world, "flaky", flaky)
        world.ok("provision", "P001", "--cloud-api", "flaky", "--user", ADMIN)
    assert held(receiver) == DEVICES["P001"], "every device once in the target"
    assert record_states(settings, "flaky") == {"provisioned": 25}
    assert {"503", "429"} & set(faults.seen) and len([f for f in faults.seen if f != "ok"]) >= 3
    attempts = db.scalar(settings.resolved_database_url, "SELECT MAX(attempts) FROM provisioning_record")
    assert int(attempts) > 1  # type: ignore[arg-type]


def test_permanent_failures_are_reported_per_device(world: Cli, receiver: str, settings: Settings) -> None:
    import base64

    from bindery.crypto.certs import pem_of

    # the receiver already holds p2-001 under another certificate: a per-device permanent error
    from tests.support.certs import Chain

    stranger = base64.b64encode(pem_of(Chain("s").device("x")).encode()).decode()
    httpx.post(f"{receiver}/interop", json={"action": "provision", "certs": [{"ref": "p2-001", "cert": stranger}]},
               auth=("bindery", "pw")).raise_for_status()
    result = world("provision", "P002", "--cloud-api", "lab", "--user", ADMIN)
    assert result.code == 1
    assert "failed: p2-001: ref or certificate already registered differently" in result.err
    assert "4 of 5 devices provisioned" in result.out
    assert record_states(settings, "lab") == {"provisioned": 4, "failed": 1}


def test_a_second_run_is_refused_while_the_lease_is_held(world: Cli, settings: Settings,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlmodel import Session

    from bindery import db as database
    from bindery.provisioning import lease

    monkeypatch.setenv("BINDERY_LEASE_WAIT_SECONDS", "0.5")
    batch_id = db.scalar(settings.resolved_database_url, "SELECT id FROM batch WHERE bid = 'P002'")
    api_id = db.scalar(settings.resolved_database_url, "SELECT id FROM cloud_api WHERE name = 'lab'")
    with Session(database.get_engine(settings)) as session:
        lease.acquire(session=session, batch_id=int(batch_id), api_id=int(api_id),  # type: ignore[arg-type]
                      holder="elsewhere:1:abc", seconds=60, wait=0, what="x")
    busy = world("provision", "P002", "--cloud-api", "lab", "--user", ADMIN)
    assert busy.code == 1 and "batch P002 into lab is being provisioned by another run until" in busy.err
    assert record_states(settings, "lab") == {}


def test_aws_iot_target_records_certificate_arns(world: Cli, moto: str, settings: Settings) -> None:  # noqa: F811
    import boto3

    boto3.client("iot", endpoint_url=moto, region_name="us-east-1").create_policy(
        policyName="Fleet", policyDocument='{"Version": "2012-10-17", "Statement": []}')
    world.ok("cloud-api", "add", "iot", "--user", ADMIN, "--kind", "aws-iot", "--region", "us-east-1",
             "--policy", "Fleet", "--endpoint-url", moto, "--quota", "1000")
    world.ok("provision", "P002", "--cloud-api", "iot", "--user", ADMIN)
    refs = db.rows(settings.resolved_database_url, "SELECT r.external_ref, d.fingerprint_sha256 FROM "
                   "provisioning_record r JOIN device d ON d.id = r.device_id")
    assert len(refs) == 5 and all(str(ref).endswith(f"cert/{fp}") for ref, fp in refs)
    assert len(boto3.client("iot", endpoint_url=moto, region_name="us-east-1").list_certificates()["certificates"]) == 5
