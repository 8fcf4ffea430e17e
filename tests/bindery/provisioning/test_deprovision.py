"""Deprovisioning from aws-iot (moto), azure-iot-hub (HTTPS fake) and interop (records only, --forget)."""

from __future__ import annotations

from pathlib import Path

import boto3
import httpx
import pytest

from bindery.receiver import ReceiverAuth, create_app
from bindery.settings import Settings
from tests.conftest import Cli
from tests.support import db
from tests.support.aws import moto, moto_server  # noqa: F401  (fixtures)
from tests.support.iothub import running_hub
from tests.support.servers import serve
from tests.support.world import ADMIN, MEMBER, make_world

DEVICES = [f"d-{i}" for i in range(5)]


@pytest.fixture
def world(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    monkeypatch.setenv("BINDERY_PROVISION_CHUNK_SIZE", "2")
    make_world(cli, tmp_path, {"R001": DEVICES})
    cli.ok("bind", "R001", "--user", MEMBER)
    return cli


def statuses(settings: Settings) -> list[str]:
    return sorted(str(r[0]) for r in db.rows(settings.resolved_database_url,
                                             "SELECT status FROM provisioning_record"))


def test_aws_iot_removes_things_and_certificates(world: Cli, moto: str, settings: Settings) -> None:  # noqa: F811
    iot = boto3.client("iot", endpoint_url=moto, region_name="us-east-1")
    iot.create_policy(policyName="Fleet", policyDocument='{"Version": "2012-10-17", "Statement": []}')
    world.ok("cloud-api", "add", "iot", "--user", ADMIN, "--kind", "aws-iot", "--region", "us-east-1",
             "--policy", "Fleet", "--endpoint-url", moto, "--quota", "1000")
    world.ok("provision", "R001", "--cloud-api", "iot", "--user", ADMIN)
    assert len(iot.list_things()["things"]) == 5
    member = world("deprovision", "R001", "--cloud-api", "iot", "--user", MEMBER)
    assert member.code == 1 and len(iot.list_certificates()["certificates"]) == 5
    removed = world.ok("deprovision", "R001", "--cloud-api", "iot", "--user", ADMIN)
    assert "5 devices removed from iot, 0 failed" in removed.out
    assert iot.list_things()["things"] == [] and iot.list_certificates()["certificates"] == []
    assert statuses(settings) == ["removed"] * 5
    assert world.ok("batch", "show", "R001", "--user", ADMIN, "--json").json["provisioned"] == {}  # type: ignore
    world.ok("provision", "R001", "--cloud-api", "iot", "--user", ADMIN)
    assert len(iot.list_certificates()["certificates"]) == 5 and statuses(settings) == ["provisioned"] * 5
    world.ok("deprovision", "R001", "--cloud-api", "iot", "--user", ADMIN)
    world.ok("unbind", "R001", "--user", ADMIN)


def test_azure_hub_deletes_devices(world: Cli, settings: Settings, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with running_hub(tmp_path / "tls", monkeypatch) as hub:
        world.ok("cloud-api", "add", "hub", "--user", ADMIN, "--kind", "azure-iot-hub", "--connection-string",
                 "env:HUB_CS", "--quota", "1000")
        world.ok("provision", "R001", "--cloud-api", "hub", "--user", ADMIN)
        assert sorted(hub.devices) == DEVICES
        del hub.devices["d-3"]  # removed by someone else meanwhile: still counts as removed
        world.ok("deprovision", "R001", "--cloud-api", "hub", "--user", ADMIN)
    assert hub.devices == {} and statuses(settings) == ["removed"] * 5


def test_interop_needs_forget(world: Cli, tmp_path: Path, settings: Settings) -> None:
    with serve(create_app(ReceiverAuth(basic="bindery:pw"), tmp_path / "r.db")) as receiver:
        world.ok("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "AWS", "--credentials",
                 "bindery:pw", "--url", f"{receiver}/interop", "--quota", "1000")
        world.ok("provision", "R001", "--cloud-api", "lab", "--user", ADMIN)
        refused = world("deprovision", "R001", "--cloud-api", "lab", "--user", ADMIN)
        assert refused.code == 2 and "interop protocol, which has no removal" in refused.err
        assert statuses(settings) == ["provisioned"] * 5
        forgotten = world.ok("deprovision", "R001", "--cloud-api", "lab", "--forget", "--user", ADMIN)
        assert "5 devices marked removed (records only) from lab" in forgotten.out
        assert len(httpx.get(f"{receiver}/devices").json()) == 5, "the target was not touched"
    assert statuses(settings) == ["removed"] * 5
    world.ok("unbind", "R001", "--user", ADMIN)
