"""`cloud-api update` for every kind (validated like add, records kept) and the aws kind's URLs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bindery.crypto.certs import pem_of
from bindery.settings import Settings
from tests.bindery.clouds.test_config import CONNECTION, SECRET
from tests.conftest import Cli
from tests.support import db
from tests.support.certs import Chain, write_csv
from tests.support.servers import held
from tests.support.world import ADMIN, MEMBER, OTHER

ACCOUNT = "123456789012"


def shown(cli: Cli, name: str) -> dict[str, str]:
    return json.loads(cli.ok("cloud-api", "show", name, "--user", ADMIN, "--json").out)  # type: ignore[no-any-return]


@pytest.mark.parametrize(("args", "url"), [
    (["--gateway-id", "abc123defg", "--region", "eu-central-1", "--stage", "prod"],
     "https://abc123defg.execute-api.eu-central-1.amazonaws.com/prod/interop"),
    (["--gateway-id", "abc123defg", "--region", "eu-central-1", "--stage", "$default"],
     "https://abc123defg.execute-api.eu-central-1.amazonaws.com/interop"),
    (["--url", "https://iot.example.com/interop"], "https://iot.example.com/interop"),
])
def test_aws_kind_urls_keep_the_account_as_audience(world: Cli, args: list[str], url: str) -> None:
    world.ok("cloud-api", "add", "a", "--user", ADMIN, "--kind", "aws", "--account-id", ACCOUNT, *args, "--no-check")
    stored = shown(world, "a")
    assert stored["url"] == url and stored["audience"] == ACCOUNT


def test_aws_url_must_be_https(world: Cli) -> None:
    refused = world("cloud-api", "add", "a", "--user", ADMIN, "--kind", "aws", "--account-id", ACCOUNT,
                    "--url", "http://iot.example.com/interop", "--no-check")
    assert refused.code == 2 and "--url: 'http://iot.example.com/interop' must be an https URL" in refused.err


def test_update_every_kind(world: Cli, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_CS", CONNECTION)
    world.ok("cloud-api", "add", "aws", "--user", ADMIN, "--kind", "aws", "--account-id", ACCOUNT, "--gateway-id",
             "abc123defg", "--region", "eu-central-1", "--stage", "prod", "--no-check")
    world.ok("cloud-api", "update", "aws", "--user", ADMIN, "--stage", "v2", "--no-check")
    assert shown(world, "aws")["url"] == "https://abc123defg.execute-api.eu-central-1.amazonaws.com/v2/interop"
    world.ok("cloud-api", "update", "aws", "--user", ADMIN, "--url", "https://iot.example.com/interop", "--no-check")
    assert shown(world, "aws")["url"] == "https://iot.example.com/interop"
    world.ok("cloud-api", "add", "az", "--user", ADMIN, "--kind", "azure", "--interop-url",
             "https://a.example/interop", "--subscription-id", "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "--no-check")
    world.ok("cloud-api", "update", "az", "--user", ADMIN, "--interop-url", "https://b.example/interop",
             "--timeout", "45", "--no-check")
    assert shown(world, "az")["url"] == "https://b.example/interop" and shown(world, "az")["timeout"] == "45.0"
    world.ok("cloud-api", "add", "iot", "--user", ADMIN, "--kind", "aws-iot", "--region", "eu-west-1", "--policy",
             "P", "--no-check")
    world.ok("cloud-api", "update", "iot", "--user", ADMIN, "--quota", "50", "--chunk-size", "40", "--no-check")
    assert shown(world, "iot")["quota"] == "50.0" and shown(world, "iot")["chunk_size"] == "40"
    world.ok("cloud-api", "add", "hub", "--user", ADMIN, "--kind", "azure-iot-hub", "--connection-string",
             "env:HUB_CS", "--no-check")
    world.ok("cloud-api", "update", "hub", "--user", ADMIN, "--connection-string",
             "HostName=hub2.azure-devices.net;SharedAccessKeyName=r;SharedAccessKey=k2=", "--no-check")
    assert shown(world, "hub")["host_name"] == "hub2.azure-devices.net"
    refused = world("cloud-api", "update", "iot", "--user", ADMIN, "--chunk-size", "0", "--no-check")
    assert refused.code == 2 and "--chunk-size: '0' is not a whole number of devices from 1 to 1000" in refused.err
    wrong_field = world("cloud-api", "update", "iot", "--user", ADMIN, "--interop-url", "https://x", "--no-check")
    assert wrong_field.code == 2 and "--interop-url does not apply to kind aws-iot" in wrong_field.err
    kind = world("cloud-api", "update", "iot", "--user", ADMIN, "--kind", "aws", "--no-check")
    assert kind.code == 2 and "--kind cannot change" in kind.err
    assert world("cloud-api", "update", "iot", "--user", MEMBER, "--quota", "1", "--no-check").code == 1
    assert world("cloud-api", "update", "iot", "--user", OTHER, "--quota", "1", "--no-check").code == 2
    assert SECRET not in json.dumps(db.rows(settings.resolved_database_url, "SELECT * FROM audit_event"), default=str)
    assert "k2=" not in json.dumps(db.rows(settings.resolved_database_url, "SELECT * FROM audit_event"), default=str)
    updates = db.scalar(settings.resolved_database_url,
                        "SELECT COUNT(*) FROM audit_event WHERE action = 'cloud_api.update'")
    assert updates == 5


def test_update_keeps_the_records_and_the_secret(world: Cli, receiver: str, tmp_path: Path,
                                                 settings: Settings) -> None:
    chain = Chain("upd")
    world.ok("trust", "add", *chain.write_ca(tmp_path / "upd-ca"))
    rows = [(f"u-{i}", "UPD-1", pem_of(chain.device(f"u-{i}"))) for i in range(4)]
    world.ok("reel", "import", write_csv(tmp_path / "upd.csv", rows))
    world.ok("bind", "UPD-1", "--user", ADMIN)
    world.ok("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "AWS", "--credentials",
             "bindery:pw", "--url", "http://127.0.0.1:9/interop", "--no-check")
    world.ok("cloud-api", "update", "lab", "--user", ADMIN, "--url", f"{receiver}/interop")  # checked, old secret
    world.ok("provision", "UPD-1", "--cloud-api", "lab", "--user", ADMIN)
    world.ok("cloud-api", "update", "lab", "--user", ADMIN, "--quota", "500")
    assert db.scalar(settings.resolved_database_url,
                     "SELECT COUNT(*) FROM provisioning_record WHERE status = 'provisioned'") == 4
    assert held(receiver) == [f"u-{i}" for i in range(4)]
