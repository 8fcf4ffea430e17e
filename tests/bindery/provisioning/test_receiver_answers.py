"""What a receiver reports back is kept per device; policyApplied: false is a warning on every surface."""

from __future__ import annotations

import re
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from prefect.artifacts import Artifact
from prefect.settings import get_current_settings

from bindery.clouds.interop import policy_applied
from bindery.flows.provisioning import provision_batch
from bindery.receiver import ReceiverAuth, create_app
from bindery.settings import Settings, get_settings
from bindery.web.app import create_app as create_web
from tests.bindery.provisioning.test_provision import add_receiver
from tests.bindery.web.conftest import PASSWORD
from tests.bindery.web.test_pages import csrf
from tests.conftest import PREFECT_HOME, Cli
from tests.support import db
from tests.support.servers import serve
from tests.support.world import ADMIN, make_world

DEVICES = [f"pa-{i:02d}" for i in range(7)]


@pytest.mark.parametrize(("said", "kept"), [
    (True, True), (False, False), ("true", True), ("false", False), ("FALSE", False), (" True ", True),
    ("bindery-reference", None), (None, None), (1, None), (0, None), ([], None)])
def test_policy_applied_is_read_as_the_vendors_receivers_write_it(said: object, kept: bool | None) -> None:
    assert policy_applied(said) is kept


@pytest.fixture
def no_policy(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    monkeypatch.setenv("BINDERY_PROVISION_CHUNK_SIZE", "3")
    make_world(cli, tmp_path, {"PA-1": DEVICES})
    cli.ok("bind", "PA-1", "--user", ADMIN)
    return str(tmp_path / "recv.db")


def test_policy_not_applied_is_provisioned_with_a_warning_everywhere(cli: Cli, no_policy: str, settings: Settings,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with serve(create_app(ReceiverAuth(basic="bindery:pw"), Path(no_policy), policy_applied=False)) as receiver:
        add_receiver(cli, "lab", receiver)
        result = cli.ok("provision", "PA-1", "--cloud-api", "lab", "--user", ADMIN)
    assert "7 of 7 devices provisioned" in result.out
    assert re.search(r"warning: 7 devices provisioned, but the receiver did not apply its IoT policy: the device "
                     r"cannot connect \(first: pa-00\)", result.err), result.err
    stored = db.rows(settings.resolved_database_url,
                     "SELECT status, endpoint, topic, policy_applied FROM provisioning_record ORDER BY id")
    assert {(s, t is not None and t.startswith("devices/pa-"), bool(p)) for s, _e, t, p in stored} == {  # type: ignore[union-attr]
        ("provisioned", True, False)}
    assert all(e for _s, e, _t, _p in stored)
    shown = cli.ok("batch", "show", "PA-1", "--user", ADMIN, "--json").json
    assert shown["warnings"] == {"lab": 7} and shown["provisioned"] == {"lab": 7}  # type: ignore[index]
    token = cli.ok("token", "create", "--user", ADMIN, "--name", "t").out.strip().splitlines()[-1]
    with serve(create_web(get_settings())) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as api:
            assert api.get("/api/batches/PA-1").json()["warnings"] == {"lab": 7}
        monkeypatch.setenv("WEB_TEST_PASSWORD", PASSWORD)
        cli.ok("user", "set-password", ADMIN, "--password-env", "WEB_TEST_PASSWORD")
        with closing(httpx.Client(base_url=url)) as browser:
            token_page = browser.get("/login")
            browser.post("/login", data={"email": ADMIN, "password": PASSWORD, "csrf_token": csrf(token_page)})
            page = browser.get("/")
        assert re.search(r'data-warning-api="lab"[^>]*>⚠ lab: 7 without policy<', page.text)


def test_policy_applied_true_is_no_warning(cli: Cli, no_policy: str, settings: Settings) -> None:
    with serve(create_app(ReceiverAuth(basic="bindery:pw"), Path(no_policy))) as receiver:
        add_receiver(cli, "lab", receiver)
        result = cli.ok("provision", "PA-1", "--cloud-api", "lab", "--user", ADMIN)
    assert "warning" not in result.err
    assert cli.ok("batch", "show", "PA-1", "--user", ADMIN, "--json").json["warnings"] == {}  # type: ignore[index]
    assert db.scalar(settings.resolved_database_url,
                     "SELECT COUNT(*) FROM provisioning_record WHERE policy_applied") == 7


def test_policy_warning_in_the_flows_artifacts(cli: Cli, no_policy: str) -> None:
    with serve(create_app(ReceiverAuth(basic="bindery:pw"), Path(no_policy), policy_applied=False)) as receiver:
        add_receiver(cli, "lab", receiver)
        state = provision_batch(bid="PA-1", user=ADMIN, cloud_api="lab", return_state=True)
    assert state.is_completed(), state.message
    assert get_current_settings().home == Path(PREFECT_HOME) and (Path(PREFECT_HOME) / "prefect.db").is_file(), \
        "the temporary server keeps its database in this pytest process's own Prefect home, not ~/.prefect"
    table = Artifact.get("provisioned-pa-1-lab")
    assert table is not None and '"warnings (policy not applied)": 7' in str(table.data)
    warnings = Artifact.get("provisioning-warnings-pa-1-lab")
    assert warnings is not None and "pa-00: provisioned, but the receiver did not apply its IoT policy" in str(
        warnings.data)
