"""`bindery cloud-api add|list|show|remove` and `bindery keys public`: validation, roles, secrets."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bindery.receiver import ReceiverAuth, create_app
from bindery.settings import Settings
from tests.conftest import Cli
from tests.support import db
from tests.support.servers import serve
from tests.support.world import ADMIN, MEMBER, OTHER

SECRET = "pa55-Wörd-do-not-leak"
CONNECTION = f"HostName=hub.azure-devices.net;SharedAccessKeyName=registryReadWrite;SharedAccessKey={SECRET}="


@pytest.fixture
def basic_receiver(tmp_path: Path) -> Iterator[str]:
    with serve(create_app(ReceiverAuth(basic=f"bindery:{SECRET}"), tmp_path / "r.db")) as url:
        yield url + "/interop"


def add(cli: Cli, name: str, *args: str, user: str = ADMIN) -> object:
    return cli("cloud-api", "add", name, "--user", user, *args)


def test_every_kind_is_stored_and_shown_redacted(world: Cli, basic_receiver: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_CS", CONNECTION)
    (tmp_path / "cred").write_text(f"bindery:{SECRET}\n")
    world.ok("cloud-api", "add", "aws-interop", "--user", ADMIN, "--kind", "aws", "--account-id", "123456789012",
             "--gateway-id", "abc123defg", "--region", "eu-central-1", "--stage", "prod", "--no-check")
    world.ok("cloud-api", "add", "azure-interop", "--user", ADMIN, "--kind", "azure", "--interop-url",
             "https://example.invalid/interop", "--subscription-id", "3F2504E0-4F89-11D3-9A0C-0305E82C3301",
             "--no-check")
    world.ok("cloud-api", "add", "private", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
             "--credentials", f"@{tmp_path / 'cred'}", "--url", basic_receiver)
    world.ok("cloud-api", "add", "iot", "--user", ADMIN, "--kind", "aws-iot", "--region", "us-east-1",
             "--policy", "DevicePolicy", "--thing-prefix", "acme-", "--endpoint-url", "http://127.0.0.1:5000",
             "--no-check")
    world.ok("cloud-api", "add", "hub", "--user", ADMIN, "--kind", "azure-iot-hub", "--connection-string",
             "env:HUB_CS", "--no-check")
    listed = world.ok("cloud-api", "list", "--user", ADMIN, "--json").json
    assert [(r["name"], r["kind"]) for r in listed] == [  # type: ignore[union-attr]
        ("aws-interop", "aws"), ("azure-interop", "azure"), ("hub", "azure-iot-hub"), ("iot", "aws-iot"),
        ("private", "other")]
    aws = world.ok("cloud-api", "show", "aws-interop", "--user", ADMIN, "--json").json
    assert aws["url"] == "https://abc123defg.execute-api.eu-central-1.amazonaws.com/prod/interop"  # type: ignore
    assert aws["audience"] == "123456789012"  # type: ignore[index]
    azure = world.ok("cloud-api", "show", "azure-interop", "--user", ADMIN, "--json").json
    assert azure["audience"] == "3f2504e0-4f89-11d3-9a0c-0305e82c3301"  # type: ignore[index]
    private = world.ok("cloud-api", "show", "private", "--user", ADMIN, "--json").json
    assert private["credentials"] == "********" and private["username"] == "bindery"  # type: ignore[index]
    hub = world.ok("cloud-api", "show", "hub", "--user", ADMIN, "--json").json
    assert hub["connection_string"] == "********" and hub["host_name"] == "hub.azure-devices.net"  # type: ignore


def test_secrets_never_appear_in_clear(world: Cli, basic_receiver: str, settings: Settings,
                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    outputs = [
        world.ok("cloud-api", "add", "private", "--user", ADMIN, "--kind", "other", "--type", "AWS",
                 "--credentials", f"bindery:{SECRET}", "--url", basic_receiver),
        world.ok("cloud-api", "add", "hub", "--user", ADMIN, "--kind", "azure-iot-hub", "--connection-string",
                 CONNECTION, "--no-check"),
        world.ok("cloud-api", "show", "private", "--user", ADMIN),
        world.ok("cloud-api", "show", "hub", "--user", ADMIN, "--json"),
        world.ok("cloud-api", "list", "--user", ADMIN),
        world("cloud-api", "add", "bad", "--user", ADMIN, "--kind", "other", "--type", "AWS",
              "--credentials", f"bindery:{SECRET}", "--url", basic_receiver.replace("/interop", "/nope")),
    ]
    for result in outputs:
        assert SECRET not in result.out and SECRET not in result.err
    assert SECRET not in caplog.text
    url = settings.resolved_database_url
    stored = db.rows(url, "SELECT settings_json, secret_token FROM cloud_api")
    assert len(stored) == 2 and all(SECRET not in str(row) for row in stored)
    assert SECRET not in str(db.rows(url, "SELECT detail FROM audit_event"))
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        for file in (path, Path(f"{path}-wal")):
            if file.exists():
                assert SECRET.encode() not in file.read_bytes()


@pytest.mark.parametrize(("args", "message"), [
    (["--kind", "gcp"], "--kind: 'gcp' is not one of"),
    (["--kind", "aws", "--account-id", "1234", "--gateway-id", "g1", "--region", "eu-central-1", "--stage", "p"],
     "--account-id: '1234' is not a 12-digit AWS account ID"),
    (["--kind", "aws", "--account-id", "123456789012", "--gateway-id", "g1", "--region", "moon", "--stage", "p"],
     "--region: 'moon' is not an AWS region"),
    (["--kind", "aws", "--account-id", "123456789012", "--region", "eu-central-1", "--stage", "p"],
     "--gateway-id is required for this kind"),
    (["--kind", "azure", "--interop-url", "http://example.com/x", "--subscription-id", "x"],
     "--interop-url: 'http://example.com/x' must be an https URL"),
    (["--kind", "azure", "--interop-url", "https://example.invalid/x", "--subscription-id", "nope", "--no-check"],
     "--subscription-id: 'nope' is not a UUID"),
    (["--kind", "other", "--type", "gcp", "--credentials", "a:b", "--url", "https://x.invalid"],
     "--type: 'gcp' is not one of AWS, Azure, private cloud"),
    (["--kind", "other", "--type", "AWS", "--credentials", "nocolon", "--url", "https://x.invalid"],
     "--credentials: expected username:password"),
    (["--kind", "other", "--type", "AWS", "--credentials", "env:NOT_SET_ANYWHERE", "--url", "https://x.invalid"],
     "--credentials: environment variable NOT_SET_ANYWHERE is empty or not set"),
    (["--kind", "other", "--type", "AWS", "--credentials", "a:b", "--url", "http://example.com/x"],
     "--url: 'http://example.com/x' must use https (plain http only to loopback)"),
    (["--kind", "aws-iot", "--region", "us-east-1"], "--policy is required for this kind"),
    (["--kind", "aws-iot", "--region", "us-east-1", "--policy", "P", "--role-arn", "arn:nope"],
     "--role-arn: 'arn:nope' is not an IAM role ARN"),
    (["--kind", "aws-iot", "--region", "us-east-1", "--policy", "P", "--url", "https://x"],
     "--url does not apply to kind aws-iot"),
    (["--kind", "azure-iot-hub", "--connection-string", "HostName=h"],
     "--connection-string: missing SharedAccessKeyName, SharedAccessKey"),
])
def test_invalid_fields_are_named_and_nothing_is_stored(world: Cli, settings: Settings, args: list[str],
                                                        message: str) -> None:
    result = world("cloud-api", "add", "x", "--user", ADMIN, *args)
    assert result.code == 2 and message in result.err, result.err
    assert db.counts(settings.resolved_database_url, ("cloud_api",)) == {"cloud_api": 0}


def test_private_targets_need_the_setting(world: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "0")
    result = world("cloud-api", "add", "x", "--user", ADMIN, "--kind", "other", "--type", "AWS", "--credentials",
                   "a:b", "--url", "http://127.0.0.1:9/interop")
    assert result.code == 2 and "resolves to non-public address 127.0.0.1" in result.err


def test_an_iot_hubs_host_name_is_held_to_the_same_rule(world: Cli, settings: Settings,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "0")
    for host, said in [("127.0.0.1:8443", "--connection-string: 127.0.0.1 resolves to non-public address 127.0.0.1"),
                       ("10.1.2.3", "--connection-string: 10.1.2.3 resolves to non-public address 10.1.2.3"),
                       ("localhost", "--connection-string: localhost resolves to non-public address"),
                       ("hub.example/x@y", "--connection-string: HostName 'hub.example/x@y' is not a host name")]:
        for check in ([], ["--no-check"]):
            result = world("cloud-api", "add", "hub", "--user", ADMIN, "--kind", "azure-iot-hub",
                           "--connection-string", f"HostName={host};SharedAccessKeyName=p;SharedAccessKey=a2V5",
                           *check)
            assert result.code == 2 and said in result.err, (host, result.err)
    assert db.counts(settings.resolved_database_url, ("cloud_api",)) == {"cloud_api": 0}


def test_info_check_failure_stores_nothing(world: Cli, basic_receiver: str, settings: Settings) -> None:
    result = world("cloud-api", "add", "x", "--user", ADMIN, "--kind", "other", "--type", "AWS", "--credentials",
                   "bindery:wrong", "--url", basic_receiver)
    expected = "x: check failed: refused by the receiver (401): wrong username or password"
    assert result.code == 1 and expected in result.err
    assert db.counts(settings.resolved_database_url, ("cloud_api",)) == {"cloud_api": 0}


def test_roles_and_accounts(world: Cli, settings: Settings) -> None:
    args = ["--kind", "aws-iot", "--region", "us-east-1", "--policy", "P", "--no-check"]
    member = world("cloud-api", "add", "iot", "--user", MEMBER, *args)
    assert member.code == 1 and "only admins may configure Product Cloud APIs" in member.err
    world.ok("cloud-api", "add", "iot", "--user", ADMIN, *args)
    again = world("cloud-api", "add", "iot", "--user", ADMIN, *args)
    assert again.code == 2 and "Product Cloud API iot already exists in account Acme" in again.err
    world.ok("cloud-api", "add", "iot", "--user", OTHER, *args)  # same name, another account
    assert world("cloud-api", "show", "iot", "--user", MEMBER).code == 1
    assert world.ok("cloud-api", "list", "--user", OTHER, "--json").json[0]["created_by"] == OTHER  # type: ignore
    world.ok("cloud-api", "remove", "iot", "--user", ADMIN)
    gone = world("cloud-api", "show", "iot", "--user", ADMIN)
    assert gone.code == 2 and "unknown Product Cloud API iot" in gone.err
    assert db.counts(settings.resolved_database_url, ("cloud_api",)) == {"cloud_api": 1}


def test_keys_public_is_stable_and_the_private_key_is_encrypted(world: Cli, settings: Settings) -> None:
    pem = world.ok("keys", "public").out
    assert pem.startswith("-----BEGIN PUBLIC KEY-----") and world.ok("keys", "public").out == pem
    jwks = json.loads(world.ok("keys", "public", "--jwks").out)
    assert jwks["keys"][0]["alg"] == "ES256" and jwks["keys"][0]["crv"] == "P-256"
    token = db.scalar(settings.resolved_database_url, "SELECT private_token FROM signing_key")
    assert "PRIVATE KEY" not in str(token)
