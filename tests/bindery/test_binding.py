"""Binding by BID and by QR text, who sees what, unbinding, and the race for one BID."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlmodel import Session

from bindery import binding
from bindery import db as database
from bindery.access import actor_for
from bindery.errors import BadInput, NotFound
from bindery.settings import Settings
from tests.conftest import Cli
from tests.support import db
from tests.support.world import ADMIN, MEMBER, OTHER, make_world

TABLES = ("binding", "audit_event")


@pytest.fixture
def world(cli: Cli, tmp_path: Path) -> Cli:
    make_world(cli, tmp_path, {"D001": ["a1", "a2", "a3"], "D002": ["b1"]})
    return cli


def test_member_binds_by_bid_then_again_is_a_no_op(world: Cli, settings: Settings) -> None:
    bound = world.ok("bind", "D001", "--user", MEMBER)
    assert "bound batch D001: 3 devices" in bound.out
    before = db.counts(settings.resolved_database_url, TABLES)
    again = world.ok("bind", "D001", "--user", ADMIN)
    assert "already bound to your account: nothing to do" in again.out
    assert db.counts(settings.resolved_database_url, TABLES) == before
    shown = world.ok("batch", "show", "D001", "--user", ADMIN, "--json").json
    assert {k: shown[k] for k in ("bid", "account", "devices", "bound", "bound_by", "target", "provisioned")} == {  # type: ignore
        "bid": "D001", "account": "Acme", "devices": 3, "bound": 3, "bound_by": MEMBER, "target": None,
        "provisioned": {}}


@pytest.mark.parametrize("qr", ["http://localhost:8000/bind?bid=D002",
                                "https://console.example.com/cloud-id?groupId=D002&lang=en"])
def test_bind_by_qr_text(world: Cli, qr: str) -> None:
    world.ok("bind", "--qr", qr, "--user", MEMBER)
    listed = world.ok("batch", "list", "--user", MEMBER, "--json").json
    assert [b["bid"] for b in listed] == ["D002"]  # type: ignore[union-attr]


@pytest.mark.parametrize(("qr", "message"), [
    ("D001", "is not a URL"),
    ("ftp://host/bind?bid=D001", "is not a URL"),
    ("https://host/bind?serial=D001", "carries no BID"),
    ("https://host/bind?bid=D0%2001", "invalid BID 'D0 01'"),
])
def test_refused_qr_texts(world: Cli, settings: Settings, qr: str, message: str) -> None:
    before = db.counts(settings.resolved_database_url, TABLES)
    result = world("bind", "--qr", qr, "--user", MEMBER)
    assert result.code == 2 and message in result.err
    assert db.counts(settings.resolved_database_url, TABLES) == before


def test_other_account_and_unknown_bid_get_the_same_error(world: Cli, settings: Settings) -> None:
    world.ok("bind", "D001", "--user", MEMBER)
    before = db.counts(settings.resolved_database_url, TABLES)
    taken = world("bind", "D001", "--user", OTHER)
    unknown = world("bind", "D999", "--user", OTHER)
    assert (taken.code, unknown.code) == (2, 2)
    assert taken.err.replace("D001", "BID") == unknown.err.replace("D999", "BID")
    assert "unknown BID D001" in taken.err
    shown = world("batch", "show", "D001", "--user", OTHER, "--json")
    assert shown.code == 2 and "unknown BID D001" in shown.err
    assert world.ok("batch", "list", "--user", OTHER, "--json").json == []
    assert db.counts(settings.resolved_database_url, TABLES) == before


def test_operator_view_without_user_lists_the_whole_catalog(world: Cli) -> None:
    world.ok("bind", "D001", "--user", MEMBER)
    listed = world.ok("batch", "list", "--json").json
    assert [b["bid"] for b in listed] == ["D001", "D002"]  # type: ignore[union-attr]


def test_bindery_user_environment_variable(world: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_USER", MEMBER)
    world.ok("bind", "D002")
    assert [b["bid"] for b in world.ok("batch", "list", "--json").json] == ["D002"]  # type: ignore[union-attr]


def test_unbind_is_for_admins_of_the_owning_account(world: Cli, settings: Settings) -> None:
    world.ok("bind", "D001", "--user", MEMBER)
    before = db.counts(settings.resolved_database_url, TABLES)
    member = world("unbind", "D001", "--user", MEMBER)
    assert member.code == 1 and "only admins may unbind batches" in member.err
    other = world("unbind", "D001", "--user", OTHER)
    assert other.code == 2 and "unknown BID D001" in other.err
    assert db.counts(settings.resolved_database_url, TABLES) == before
    world.ok("unbind", "D001", "--user", ADMIN)
    assert world.ok("batch", "list", "--user", ADMIN, "--json").json == []
    world.ok("bind", "D001", "--user", OTHER)
    url = settings.resolved_database_url
    assert db.scalar(url, "SELECT COUNT(*) FROM audit_event WHERE action LIKE 'batch.%'") == 3


@pytest.mark.parametrize(("args", "code", "message"), [
    (["bind", "D001", "--user", "ghost@acme.io"], 2, "unknown user ghost@acme.io"),
    (["bind", "D001"], 2, "no acting user: give --user EMAIL or set BINDERY_USER"),
    (["bind", "D 001", "--user", MEMBER], 2, "invalid BID 'D 001'"),
    (["bind", "D001", "--qr", "http://h/bind?bid=D001", "--user", MEMBER], 2, "give either a BID or --qr TEXT"),
])
def test_bind_errors(world: Cli, settings: Settings, args: list[str], code: int, message: str) -> None:
    before = db.counts(settings.resolved_database_url, TABLES)
    result = world(*args)
    assert result.code == code and message in result.err
    assert db.counts(settings.resolved_database_url, TABLES) == before


def test_concurrent_binds_of_one_bid_exactly_one_wins(world: Cli, settings: Settings) -> None:
    """Eight accounts bind D001 at the same moment, each in its own session and thread."""
    for i in range(8):
        world.ok("account", "create", f"Racer{i}")
        world.ok("user", "add", f"r{i}@race.io", "--account", f"Racer{i}", "--role", "member")
    engine = database.get_engine(settings)
    start = threading.Barrier(8)
    outcomes: list[str] = []

    actors = []
    for i in range(8):
        with Session(engine) as session:
            actors.append(actor_for(session=session, email=f"r{i}@race.io"))

    def racer(i: int) -> None:
        start.wait()
        with Session(engine) as session:
            actor = actors[i]
            try:
                binding.bind(session=session, actor=actor, bid="D001")
                session.commit()
                outcomes.append("won")
            except NotFound:
                session.rollback()
                outcomes.append("lost")

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]
    assert db.scalar(settings.resolved_database_url, "SELECT COUNT(*) FROM binding") == 1


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_loser_blocked_on_the_unique_index_gets_unknown_bid(world: Cli, settings: Settings) -> None:
    """PostgreSQL: the first bind holds its uncommitted row; the second waits on the unique index, then loses.
    (SQLite serializes whole transactions at BEGIN IMMEDIATE; the race test above covers it.)"""
    world.ok("account", "create", "Slow")
    world.ok("user", "add", "s@slow.io", "--account", "Slow", "--role", "member")
    engine = database.get_engine(settings)
    with Session(engine) as lookup:
        actor, other = actor_for(session=lookup, email="s@slow.io"), actor_for(session=lookup, email=MEMBER)
    first = Session(engine)
    binding.bind(session=first, actor=actor, bid="D001")
    first.flush()
    errors: list[Exception] = []

    def second() -> None:
        with Session(engine) as session:
            try:
                binding.bind(session=session, actor=other, bid="D001")
                session.commit()
            except (NotFound, BadInput) as exc:
                errors.append(exc)

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(timeout=1.0)
    assert thread.is_alive(), "the second bind must wait for the first transaction"
    first.commit()
    first.close()
    thread.join(timeout=10)
    assert [str(e) for e in errors] == ["unknown BID D001"]
