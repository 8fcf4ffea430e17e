"""The provision-batch and bind-and-provision flows against a real Prefect server and real receivers."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prefect.artifacts import Artifact

from bindery.flows.provisioning import bind_and_provision, provision_batch
from bindery.settings import Settings
from tests.conftest import Cli
from tests.support import db
from tests.support.flaky import FaultLog, create_flaky_proxy
from tests.support.servers import held, serve
from tests.support.world import ADMIN, MEMBER, make_world

DEVICES = [f"f-{i:03d}" for i in range(18)]


@pytest.fixture
def world(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    monkeypatch.setenv("BINDERY_PROVISION_CHUNK_SIZE", "4")
    monkeypatch.setenv("BINDERY_RETRY_BASE_SECONDS", "0.05")
    monkeypatch.setenv("BINDERY_HTTP_TIMEOUT", "0.5")
    make_world(cli, tmp_path, {"FL1": DEVICES})
    return cli


def add(cli: Cli, name: str, url: str) -> None:
    cli.ok("cloud-api", "add", name, "--user", ADMIN, "--kind", "other", "--type", "AWS", "--credentials",
           "bindery:pw", "--url", f"{url}/interop", "--quota", "1000", "--no-check")


def test_bind_and_provision_flow_with_flaky_target(world: Cli, receiver: str, settings: Settings,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_PROVISION_RETRIES", "12")
    faults = FaultLog(rate=0.3, seed=1)
    with serve(create_flaky_proxy(receiver, faults)) as flaky:
        add(world, "flaky", flaky)
        state = bind_and_provision(bid="FL1", user=ADMIN, cloud_api="flaky", return_state=True)
    assert state.is_completed(), state.message
    assert held(receiver) == DEVICES
    assert db.scalar(settings.resolved_database_url,
                     "SELECT COUNT(*) FROM provisioning_record WHERE status = 'provisioned'") == len(DEVICES)
    table = Artifact.get("provisioned-fl1-flaky")
    assert table is not None and '"provisioned": 18' in str(table.data)
    assert any(f != "ok" for f in faults.seen)


def test_provision_batch_flow_fails_with_a_per_device_report(world: Cli, receiver: str, settings: Settings) -> None:
    world.ok("bind", "FL1", "--user", MEMBER)
    add(world, "lab", receiver)
    import base64

    from bindery.crypto.certs import pem_of
    from tests.support.certs import Chain

    other = base64.b64encode(pem_of(Chain("o").device("o")).encode()).decode()
    httpx.post(f"{receiver}/interop", json={"action": "provision", "certs": [{"ref": "f-003", "cert": other}]},
               auth=("bindery", "pw")).raise_for_status()
    state = provision_batch(bid="FL1", cloud_api="lab", user=ADMIN, return_state=True)
    assert state.is_failed() and str(state.message) == (
        "17 of 18 devices provisioned into lab; 1 device failed: ref or certificate already registered differently")
    report = Artifact.get("provisioning-failures-fl1-lab")
    assert report is not None and "f-003: ref or certificate already registered differently" in str(report.data)
    again = provision_batch(bid="FL1", cloud_api="lab", user=ADMIN, return_state=True)
    assert again.is_failed()
    assert db.scalar(settings.resolved_database_url, "SELECT COUNT(*) FROM run_lease") == 0


def test_a_target_that_is_down_fails_every_device_and_the_run_names_why(world: Cli, settings: Settings,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Task retries used up: each device is failed with its error, not left pending; the flow run's message
    and its failures artifact say why."""
    from tests.bindery.provisioning.test_status import closed_port_url

    monkeypatch.setenv("BINDERY_PROVISION_RETRIES", "1")
    world.ok("bind", "FL1", "--user", MEMBER)
    url = closed_port_url()
    add(world, "down", url.removesuffix("/interop"))
    state = provision_batch(bid="FL1", cloud_api="down", user=ADMIN, return_state=True)
    error = f"connection to {url} failed (ConnectError)"
    assert state.is_failed()
    assert str(state.message) == f"0 of 18 devices provisioned into down; 18 devices failed: {error}"
    assert db.rows(settings.resolved_database_url, "SELECT status, attempts, last_error, COUNT(*) FROM "
                   "provisioning_record GROUP BY status, attempts, last_error") == [("failed", 2, error, 18)]
    report = Artifact.get("provisioning-failures-fl1-down")
    assert report is not None
    assert f"18 devices not provisioned into down: 18 devices failed: {error}" in str(report.data)


def test_member_bind_without_api_provisions_nothing(world: Cli, receiver: str) -> None:
    add(world, "lab", receiver)
    state = bind_and_provision(bid="FL1", user=MEMBER, return_state=True)
    assert state.is_completed() and held(receiver) == []
    refused = provision_batch(bid="FL1", cloud_api="lab", user=MEMBER, return_state=True)
    assert refused.is_failed() and "only admins may provision devices" in str(refused.message)


def test_deprovision_flow_with_forget(world: Cli, receiver: str, settings: Settings) -> None:
    from bindery.flows.provisioning import deprovision_batch

    world.ok("bind", "FL1", "--user", MEMBER)
    add(world, "lab", receiver)
    assert provision_batch(bid="FL1", cloud_api="lab", user=ADMIN, return_state=True).is_completed()
    refused = deprovision_batch(bid="FL1", cloud_api="lab", user=ADMIN, return_state=True)
    assert refused.is_failed() and "no removal" in str(refused.message)
    state = deprovision_batch(bid="FL1", cloud_api="lab", user=ADMIN, forget=True, return_state=True)
    assert state.is_completed() and "18 devices removed" in str(state.message)
    assert db.scalar(settings.resolved_database_url,
                     "SELECT COUNT(*) FROM provisioning_record WHERE status = 'removed'") == len(DEVICES)


def test_shard_flows_provision_their_ranges(world: Cli, receiver: str, settings: Settings) -> None:
    """Each provision-shard run claims its range; a second run of a finished shard does nothing."""
    from bindery.flows.provisioning import provision_shard
    from bindery.provisioning.sharded import start_sharded
    from bindery.settings import get_settings

    world.ok("bind", "FL1", "--user", MEMBER)
    add(world, "lab", receiver)
    start_sharded(settings=get_settings(), user=ADMIN, bid="FL1", cloud_api="lab", shard_count=2)
    for shard in (0, 1):
        state = provision_shard(bid="FL1", cloud_api="lab", user=ADMIN, shard=shard, return_state=True)
        assert state.is_completed() and state.message.startswith(f"shard {shard}:"), state.message
    assert held(receiver) == DEVICES
    assert db.scalar(settings.resolved_database_url,
                     "SELECT COUNT(*) FROM shard_lease WHERE finished_at IS NOT NULL") == 2
    again = provision_shard(bid="FL1", cloud_api="lab", user=ADMIN, shard=0, return_state=True)
    assert again.is_completed() and "finished or held" in (again.message or "")


def test_sharded_run_needs_the_shard_deployment(world: Cli, receiver: str, settings: Settings) -> None:
    world.ok("bind", "FL1", "--user", MEMBER)
    add(world, "lab", receiver)
    state = provision_batch(bid="FL1", cloud_api="lab", user=ADMIN, shards=2, return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match="need the provision-shard/provision-shard deployment"):
        state.result()
    assert db.scalar(settings.resolved_database_url, "SELECT COUNT(*) FROM run_lease") == 0, "lease released"
