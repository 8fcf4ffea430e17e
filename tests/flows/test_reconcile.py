"""The reconcile flow against a real Prefect server: artifacts per account, repair as a parameter."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from prefect.artifacts import Artifact

from bindery.flows.reconcile import reconcile
from tests.conftest import Cli
from tests.support.aws import moto, moto_server  # noqa: F401  (fixtures)
from tests.support.world import ADMIN, MEMBER, make_world


def test_reconcile_flow_reports_and_repairs(cli: Cli, tmp_path: Path, moto: str,  # noqa: F811
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    make_world(cli, tmp_path, {"RF1": ["a", "b", "c"]})
    cli.ok("bind", "RF1", "--user", MEMBER)
    iot = boto3.client("iot", endpoint_url=moto, region_name="us-east-1")
    iot.create_policy(policyName="Fleet", policyDocument='{"Version": "2012-10-17", "Statement": []}')
    cli.ok("cloud-api", "add", "iot", "--user", ADMIN, "--kind", "aws-iot", "--region", "us-east-1",
           "--policy", "Fleet", "--endpoint-url", moto, "--quota", "1000")
    cli.ok("provision", "RF1", "--cloud-api", "iot", "--user", ADMIN)
    for principal in iot.list_thing_principals(thingName="b")["principals"]:
        iot.detach_thing_principal(thingName="b", principal=principal)
    iot.delete_thing(thingName="b")
    state = reconcile(return_state=True)
    assert state.is_completed() and "1 targets checked, 1 with drift" in str(state.message)
    summary = Artifact.get("reconcile-summary-acme")
    assert summary is not None and "RF1 → iot**: drift" in str(summary.data) and "missing b" in str(summary.data)
    repaired = reconcile(account="Acme", repair=True, return_state=True)
    assert repaired.is_completed()
    assert "0 with drift" in str(reconcile(return_state=True).message)
    assert sorted(t["thingName"] for t in iot.list_things()["things"]) == ["a", "b", "c"]
