"""prefect.yaml names real flows with typed parameter schemas, on the `bindery` pool, reconcile nightly."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml
from prefect import Flow
from prefect.utilities.callables import parameter_schema

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {"import-reel", "bind-and-provision", "provision-batch", "provision-shard", "deprovision-batch",
            "export-manifest", "bind-batch", "reconcile", "recover-crashed-run"}


def deployments() -> list[dict]:
    return yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]


def load_flow(entrypoint: str) -> Flow:
    path, name = entrypoint.split(":")
    spec = importlib.util.spec_from_file_location(f"entry_{name}", ROOT / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    flow = getattr(module, name)
    assert isinstance(flow, Flow)
    return flow


def test_every_flow_has_a_deployment() -> None:
    assert {d["name"] for d in deployments()} == EXPECTED


@pytest.mark.parametrize("deployment", deployments(), ids=lambda d: d["name"])
def test_deployment_entrypoint_pool_and_schema(deployment: dict) -> None:
    flow = load_flow(deployment["entrypoint"])
    assert flow.name == deployment["name"]
    assert deployment["enforce_parameter_schema"] is True and deployment["work_pool"]["name"] == "bindery"
    assert deployment["description"]
    schema = parameter_schema(flow.fn).model_dump()
    assert schema["properties"], "typed parameters render as a form"
    for name, prop in schema["properties"].items():
        assert prop.get("type") or prop.get("anyOf") or prop.get("format"), f"{name} is untyped"
        assert prop.get("description"), f"{name} has no description for the UI form"


def test_reconcile_runs_nightly_at_two() -> None:
    reconcile = next(d for d in deployments() if d["name"] == "reconcile")
    assert reconcile["schedules"] == [{"cron": "0 2 * * *", "timezone": "Europe/Berlin"}]


def test_installed_code_deploys_what_prefect_yaml_declares() -> None:
    """`bindery deploy` (module-path entrypoints, no clone) and prefect.yaml (file entrypoints) agree."""
    from bindery.deployments.serve import build

    built = {d.name: d for d in build(work_pool="bindery", module_paths=True)}
    for declared in deployments():
        mine = built[declared["name"]]
        path, function = declared["entrypoint"].split(":")
        assert mine.entrypoint == "bindery." + path.removesuffix(".py").replace("/", ".") + "." + function
        assert mine.description == declared["description"] and mine.work_pool_name == declared["work_pool"]["name"]
        assert mine.enforce_parameter_schema is declared["enforce_parameter_schema"]
        crons = [(s.schedule.cron, s.schedule.timezone) for s in mine.schedules]
        assert crons == [(s["cron"], s["timezone"]) for s in declared.get("schedules", [])]


def test_serve_builds_the_same_deployments() -> None:
    from bindery.deployments.serve import build

    built = {d.name: d for d in build()}
    assert set(built) == EXPECTED
    assert all(d.enforce_parameter_schema for d in built.values())
    schedule = built["reconcile"].schedules[0].schedule
    assert (schedule.cron, schedule.timezone) == ("0 2 * * *", "Europe/Berlin")
