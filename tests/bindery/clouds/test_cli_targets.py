"""From the CLI to real peers: `bindery receiver` as a process, `cloud-api add` checking every kind."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from bindery import db as database
from bindery.access import actor_for
from bindery.clouds.base import DeviceCert, Outcome
from bindery.clouds.config import get_cloud_api
from bindery.clouds.connectors import connector_for
from bindery.crypto.certs import fingerprint, pem_of
from bindery.settings import Settings
from tests.conftest import Cli
from tests.support.aws import moto, moto_server  # noqa: F401  (fixtures)
from tests.support.certs import Chain
from tests.support.iothub import running_hub
from tests.support.tls import make_tls
from tests.support.world import ADMIN

SUBSCRIPTION = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def receiver_process(world: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """`bindery receiver` over https, trusting the public key `bindery keys public` prints."""
    (tmp_path / "bindery.pub").write_text(world.ok("keys", "public").out)
    tls = make_tls(tmp_path / "tls")
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca))
    port = free_port()
    log = tmp_path / "receiver.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "bindery.cli", "receiver", "--port", str(port), "--public-key",
         str(tmp_path / "bindery.pub"), "--audience", SUBSCRIPTION, "--db", str(tmp_path / "recv.db"),
         "--tls-cert", str(tls.cert), "--tls-key", str(tls.key)],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, env=os.environ.copy())
    url = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/devices", verify=ssl.create_default_context(cafile=str(tls.ca)))
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(f"receiver did not start: {log.read_text()}") from None
            time.sleep(0.2)
    yield url
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def provision_one(name: str, tag: str) -> list[object]:
    settings = Settings()  # as the environment is now
    device = Chain(tag).device(f"{tag}-1")
    with Session(database.get_engine(settings)) as session:
        api = get_cloud_api(session=session, actor=actor_for(session=session, email=ADMIN), name=name)
        connector = connector_for(session=session, settings=settings, api=api)
        try:
            return list(connector.provision([DeviceCert(f"{tag}-1", pem_of(device), fingerprint(device))]))
        finally:
            connector.close()


def test_azure_interop_kind_with_jwt_through_the_receiver_process(world: Cli, receiver_process: str,
                                                                  settings: Settings, tmp_path: Path) -> None:
    world.ok("cloud-api", "add", "az", "--user", ADMIN, "--kind", "azure", "--interop-url",
             f"{receiver_process}/interop", "--subscription-id", SUBSCRIPTION)
    results = provision_one("az", "jwt")
    assert [r.outcome for r in results] == [Outcome.PROVISIONED]  # type: ignore[attr-defined]
    trusted = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    held = httpx.get(f"{receiver_process}/devices", verify=trusted).json()
    assert [d["ref"] for d in held] == ["jwt-1"]


def test_wrong_audience_is_refused_at_add_time(world: Cli, receiver_process: str, settings: Settings) -> None:
    result = world("cloud-api", "add", "az", "--user", ADMIN, "--kind", "azure", "--interop-url",
                   f"{receiver_process}/interop", "--subscription-id", "00000000-0000-0000-0000-000000000001")
    assert result.code == 1 and "refused by the receiver (401): token audience does not match" in result.err


def test_aws_iot_kind_checked_and_provisioned_from_the_cli(world: Cli, moto: str, settings: Settings) -> None:  # noqa: F811
    import boto3

    boto3.client("iot", endpoint_url=moto, region_name="eu-west-1").create_policy(
        policyName="Fleet", policyDocument='{"Version": "2012-10-17", "Statement": []}')
    missing = world("cloud-api", "add", "iot", "--user", ADMIN, "--kind", "aws-iot", "--region", "eu-west-1",
                    "--policy", "Nope", "--endpoint-url", moto)
    assert missing.code == 1 and "GetPolicy: ResourceNotFoundException" in missing.err
    world.ok("cloud-api", "add", "iot", "--user", ADMIN, "--kind", "aws-iot", "--region", "eu-west-1",
             "--policy", "Fleet", "--endpoint-url", moto)
    assert provision_one("iot", "iotcli")[0].outcome is Outcome.PROVISIONED  # type: ignore[attr-defined]


def test_azure_iot_hub_kind_checked_and_provisioned_from_the_cli(world: Cli, settings: Settings, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from tests.support.iothub import KEY

    caplog.set_level(logging.DEBUG)
    with running_hub(tmp_path / "hubtls", monkeypatch) as hub:
        world.ok("cloud-api", "add", "hub", "--user", ADMIN, "--kind", "azure-iot-hub", "--connection-string",
                 "env:HUB_CS")
        assert provision_one("hub", "hubcli")[0].outcome is Outcome.PROVISIONED  # type: ignore
    assert list(hub.devices) == ["hubcli-1"]
    assert KEY not in caplog.text, "the shared access key never reaches the logs"
