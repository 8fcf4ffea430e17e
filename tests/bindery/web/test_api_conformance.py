"""Schemathesis holds the HTTP API's real answers to its OpenAPI document: every route, as an admin and
as a member of a seeded account, answers only documented status codes, content types, headers and bodies."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bindery.crypto.certs import pem_of
from tests.bindery.web.conftest import Console
from tests.bindery.web.test_api import add_lab, wait_job
from tests.support.certs import Chain, write_csv
from tests.support.world import ADMIN, MEMBER, OTHER

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
GENERATED = 6  # per route and user: the seeded cases below reach the 2xx answers, these the edges


def seeded(console: Console, tmp_path: Path) -> dict[str, Any]:
    """Acme with a Product Cloud API, a batch provisioned through a job, a reconcile report and an audit log,
    and a batch that Beta offers to Acme (its code)."""
    add_lab(console).raise_for_status()
    chain = Chain("offered")
    console.cli.ok("trust", "add", *chain.write_ca(tmp_path / "offered-ca"))
    console.cli.ok("reel", "import", write_csv(tmp_path / "W009.csv", [
        (f"w9-{i}", "W009", pem_of(chain.device(f"cn-w9-{i}"))) for i in range(2)]))
    console.cli.ok("bind", "W009", "--user", OTHER)
    offered = console.cli.ok("batch", "transfer", "W009", "--to", "Acme", "--user", OTHER).out
    with console.client(ADMIN) as admin:
        bound = admin.post("/api/batches", json={"bid": "W002", "cloud_api": "lab"}).json()
        assert wait_job(admin, bound["job"])["state"] == "COMPLETED"
    with console.client(MEMBER) as member:
        member.post("/api/batches", json={"bid": "W001"}).raise_for_status()
    console.cli.ok("reconcile", "--account", "Acme")
    code = offered.split("(shown once): ", 1)[1].split()[0]
    return {"bid": "W002", "name": "lab", "job_id": bound["job"]["id"], "code": code}


def explicit(path: str, method: str, values: dict[str, Any], console: Console) -> Iterator[dict[str, Any]]:
    """The calls that reach each route's 2xx answers on the seeded data (as Case keyword arguments)."""
    if method == "DELETE":  # what the POSTs added: a batch without provisioned devices, an API not in use
        values = {"bid": "W003", "name": "lab2"}
    if path in ("/api/batches/{bid}/split", "/api/batches/{bid}/transfer"):  # W001: bound, nothing provisioned
        values = {**values, "bid": "W001"}
    params = {name: values[name] for name in ("bid", "name", "job_id") if "{" + name + "}" in path}
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/api/batches"): {"bid": "W003"},
        ("POST", "/api/batches/{bid}/provision"): {"cloud_api": "lab"},
        ("PUT", "/api/batches/{bid}/target"): {"cloud_api": "lab"},
        ("POST", "/api/batches/{bid}/deprovision"): {"cloud_api": "lab", "forget": False},
        ("POST", "/api/cloud-apis"): {"name": "lab2", "kind": "other", "type": "private cloud",
                                      "url": f"{console.receiver}/interop", "credentials": "bindery:pw-secret-value",
                                      "check": False},
        ("PUT", "/api/settings/auto-provision"): {"enabled": False},
        ("PATCH", "/api/cloud-apis/{name}"): {"kind": "other", "quota": "500", "check": False},
        ("POST", "/api/batches/{bid}/split"): {"new_bid": "W001-B", "count": 2},
        ("POST", "/api/batches/{bid}/transfer"): {"to_account": "Beta", "expires": "1d"},
        ("POST", "/api/transfers/accept"): {"code": values.get("code", "")},
    }
    case: dict[str, Any] = {"path_parameters": params}
    if (method, path) in bodies:
        case.update(body=bodies[method, path], media_type="application/json")
    yield case
    if path == "/api/batches/{bid}/devices":
        yield {"path_parameters": params, "headers": {"Accept": "text/csv"}, "query": {"limit": 1}}
        yield {"path_parameters": params, "query": {"limit": 1, "failed_first": True}}
    if path == "/api/audit":
        yield {"query": {"limit": 2, "since": "1d"}}


def routable(case: schemathesis.Case) -> bool:
    """A path value the server would read as other path segments (a '/', a dot segment) is no value of
    this route: the server routes it elsewhere, answering 405 or another route's 404."""
    return all("/" not in str(v) and str(v).strip(".") != "" for v in (case.path_parameters or {}).values())


def generated(operation: Any, check: Callable[[schemathesis.Case], None]) -> Callable[[], None]:
    """A bounded, derandomized run of the route's generated cases (no shrinking: a failure is collected)."""

    @given(case=operation.as_strategy().filter(routable))
    @settings(max_examples=GENERATED, deadline=None, derandomize=True, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        check(case)

    return run


ORDER = {"GET": 0, "PUT": 1, "PATCH": 1, "POST": 2, "DELETE": 3}  # read the seeded data before changing or removing it


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_answers_conform_to_the_openapi_document(console: Console, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("BINDERY_HTTP_TIMEOUT", "2")
    values = seeded(console, tmp_path)
    schema = schemathesis.openapi.from_url(f"{console.url}/openapi.json")
    operations = sorted((result.ok() for result in schema.get_all_operations()),
                        key=lambda op: (ORDER[op.method.upper()], op.path))
    failures: list[str] = []
    answered: dict[str, set[int]] = {}

    def check(case: schemathesis.Case, who: str | None) -> None:
        label = f"{who or 'anonymous'} {case.method} {case.formatted_path}"
        token = {"Authorization": f"Bearer {console.tokens[who]}"} if who else {}
        try:
            response = case.call_and_validate(base_url=console.url, checks=CHECKS, headers=token)
        except (Failure, FailureGroup) as exc:  # each says what did not match where: collect them all
            sent = f" query={case.query}" if case.query else ""
            sent += f" body={case.body!r}" if case.body is not NOT_SET else ""
            failures.append(f"{label}{sent}:\n{exc}")
            return
        answered.setdefault(f"{case.method} {case.path}", set()).add(response.status_code)

    for operation in operations:
        for who in (ADMIN, MEMBER):
            for given_case in explicit(operation.path, operation.method.upper(), values, console):
                check(operation.Case(**given_case), who)

            generated(operation, lambda case, who=who: check(case, who))()
        check(operation.Case(**next(explicit(operation.path, operation.method.upper(), values, console))), None)
    assert not failures, f"{len(failures)} answers do not match the OpenAPI document:\n\n" + "\n\n".join(failures[:5])
    assert len(answered) == len(operations) >= 20, sorted(answered)
    two_xx = {route for route, codes in answered.items() if any(200 <= code < 300 for code in codes)}
    assert two_xx == set(answered), f"routes never answered 2xx: {sorted(set(answered) - two_xx)}"
    assert all(401 in codes for codes in answered.values()), "every route refuses a call without a token"
