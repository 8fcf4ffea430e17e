"""A lease held by a lost host: refused runs name it, `bindery lease list` shows it, an admin clears it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from bindery import db as database
from bindery.models.catalog import Batch
from bindery.models.clouds import CloudApi
from bindery.provisioning import lease
from bindery.settings import Settings
from tests.bindery.provisioning.test_provision import add_receiver
from tests.conftest import Cli
from tests.support import db
from tests.support.servers import held
from tests.support.world import ADMIN, MEMBER, OTHER, make_world

LOST_HOST = "host-that-burned-down:4242:0badc0de"


@pytest.fixture
def stuck(cli: Cli, tmp_path: Path, receiver: str, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    monkeypatch.setenv("BINDERY_LEASE_WAIT_SECONDS", "0.3")
    make_world(cli, tmp_path, {"L001": [f"l-{i}" for i in range(6)]})
    cli.ok("bind", "L001", "--user", ADMIN)
    add_receiver(cli, "lab", receiver)
    with Session(database.get_engine(settings)) as session:
        batch = session.exec(select(Batch).where(Batch.bid == "L001")).one()
        api = session.exec(select(CloudApi).where(CloudApi.name == "lab")).one()
        assert batch.id is not None and api.id is not None
        lease.acquire(session=session, batch_id=batch.id, api_id=api.id, holder=LOST_HOST, seconds=3600, wait=0,
                      what="L001")
    return cli


def test_a_lost_hosts_lease_is_listed_and_cleared_by_an_admin(stuck: Cli, receiver: str,
                                                              settings: Settings) -> None:
    refused = stuck("provision", "L001", "--cloud-api", "lab", "--user", ADMIN)
    assert refused.code == 1 and "being provisioned by another run until" in refused.err
    listed = stuck.ok("lease", "list", "--user", ADMIN, "--json").json
    assert [(r["bid"], r["cloud_api"], r["holder"], r["expired"]) for r in listed] == [  # type: ignore[index, union-attr]
        ("L001", "lab", LOST_HOST, False)]
    assert stuck("lease", "list", "--user", MEMBER).code == 1, "members see no leases"
    assert stuck.ok("lease", "list", "--user", OTHER, "--json").json == [], "other accounts see none"
    foreign = stuck("lease", "release", "L001", "--cloud-api", "lab", "--user", OTHER)
    assert foreign.code == 2 and "unknown BID L001" in foreign.err
    released = stuck.ok("lease", "release", "L001", "--cloud-api", "lab", "--user", ADMIN)
    assert f"held by {LOST_HOST}" in released.out
    audited = db.rows(settings.resolved_database_url,
                      "SELECT actor, subject FROM audit_event WHERE action = 'lease.release'")
    assert audited == [(ADMIN, "L001")]
    again = stuck("lease", "release", "L001", "--cloud-api", "lab", "--user", ADMIN)
    assert again.code == 2 and "no run holds batch L001 into lab" in again.err
    stuck.ok("provision", "L001", "--cloud-api", "lab", "--user", ADMIN)
    assert sorted(held(receiver)) == [f"l-{i}" for i in range(6)]
