"""Alerts end to end: `bindery alerts` makes a Prefect automation with a webhook block on a real Prefect
server; a provisioning flow run that ends Failed and a reconcile that finds drift (made behind Bindery's
back in moto) reach a local HTTP receiver with the batch, the target and the counts."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from fastapi import FastAPI, Request

from bindery.crypto.certs import pem_of
from bindery.receiver import ReceiverAuth, create_app
from bindery.settings import Settings
from tests.conftest import Cli
from tests.deployments.conftest import PREFECT_GROUP
from tests.support.aws import delete_behind_bindery, moto, moto_server  # noqa: F401  (fixtures)
from tests.support.certs import Chain
from tests.support.servers import serve
from tests.support.world import ADMIN, MEMBER, make_world

BINDERY = str(Path(sys.executable).parent / "bindery")


class Sink:
    """The operator's webhook: keeps every alert it is sent."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.app = FastAPI()

        @self.app.post("/hook")
        async def hook(request: Request) -> dict[str, str]:
            self.alerts.append(await request.json())
            return {"ok": "yes"}

    def wait_for(self, event: str, bid: str, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for alert in self.alerts:
                body = json.loads(alert["body"])
                if event in alert["subject"] and body["bid"] == bid:
                    return {"subject": alert["subject"], **body}
            time.sleep(0.5)
        raise AssertionError(f"no {event} alert for {bid} within {timeout} s; got {self.alerts}")


@pytest.fixture
def sink() -> Iterator[tuple[Sink, str]]:
    receiver = Sink()
    with serve(receiver.app) as url:
        yield receiver, f"{url}/hook"


def run(env: dict[str, str], *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == code, (done.returncode, done.stdout[-2000:], done.stderr[-3000:])
    return done


@pytest.mark.slow
@PREFECT_GROUP
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_failed_run_and_drift_reach_the_webhook(prefect_server: dict[str, str], cli: Cli, settings: Settings,
                                                sink: tuple[Sink, str], moto: str, tmp_path: Path,  # noqa: F811
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    alerts, hook = sink
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    env = {**os.environ, **{k: prefect_server[k] for k in ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING")},
           "BINDERY_ALERT_WEBHOOK_URL": hook}
    first = run(env, BINDERY, "alerts").stdout
    again = run(env, BINDERY, "alerts").stdout
    assert "automation bindery-alerts (" in first and first == again, "a second deploy changes nothing"

    make_world(cli, tmp_path, {"AL-1": [f"a-{i}" for i in range(4)], "AL-2": [f"b-{i}" for i in range(3)]})
    cli.ok("bind", "AL-1", "--user", MEMBER)
    cli.ok("bind", "AL-2", "--user", MEMBER)
    with serve(create_app(ReceiverAuth(basic="bindery:pw"), tmp_path / "recv.db")) as receiver:
        cli.ok("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
               "--credentials", "bindery:pw", "--url", f"{receiver}/interop", "--quota", "1000")
        squatter = base64.b64encode(pem_of(Chain("squat").device("a-1")).encode()).decode()
        httpx.post(f"{receiver}/interop", auth=("bindery", "pw"),
                   json={"action": "provision", "certs": [{"ref": "a-1", "cert": squatter}]}).raise_for_status()
        flow = ("from bindery.flows.provisioning import provision_batch; "
                f"state = provision_batch(bid='AL-1', cloud_api='lab', user='{ADMIN}', return_state=True); "
                "print(state.type.value)")
        assert run(env, sys.executable, "-c", flow).stdout.strip().endswith("FAILED")
    failed = alerts.wait_for("bindery.provisioning.failed", "AL-1")
    assert (failed["cloud_api"], failed["account"]) == ("lab", "Acme")
    assert failed["counts"]["failed"] == 1 and failed["counts"]["provisioned"] == 3

    runs = cli.ok("runs", "AL-1", "--user", ADMIN, "--json").json
    assert [(r["started_via"], r["status"]) for r in runs] == [("flow", "failed")]  # type: ignore[index, union-attr]
    assert runs[0]["flow_run_id"] and runs[0]["flow_run_url"].endswith(  # type: ignore[index]
        f"/runs/flow-run/{runs[0]['flow_run_id']}")  # type: ignore[index]

    iot = boto3.client("iot", endpoint_url=moto, region_name="us-east-1")
    iot.create_policy(policyName="Fleet", policyDocument='{"Version": "2012-10-17", "Statement": []}')
    cli.ok("cloud-api", "add", "iot", "--user", ADMIN, "--kind", "aws-iot", "--region", "us-east-1",
           "--policy", "Fleet", "--endpoint-url", moto, "--quota", "1000")
    cli.ok("provision", "AL-2", "--cloud-api", "iot", "--user", ADMIN)
    delete_behind_bindery(iot, settings, "b-1")
    run(env, BINDERY, "reconcile", "--account", "Acme", code=3)
    drift = alerts.wait_for("bindery.reconcile.drift", "AL-2")
    assert (drift["cloud_api"], drift["account"]) == ("iot", "Acme")
    assert drift["counts"]["missing"] == 1 and drift["counts"]["drift"] == 1 and "1 missing" in drift["message"]
    assert not [a for a in alerts.alerts if "AL-1" in a["body"] and "drift" in a["subject"]], \
        "an interop target's records-only check is no drift"
