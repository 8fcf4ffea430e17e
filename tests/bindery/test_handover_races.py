"""Races around a batch changing hands, each on its own connection: two splits of one batch at once, and a
provisioning run whose permission was decided before the batch was offered, accepted or split.

On PostgreSQL the second transaction is held at the first's locks (seen in pg_stat_activity) until the first
commits; SQLite takes its write lock at BEGIN IMMEDIATE, so there the two simply run one after the other."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import Session

from bindery import db as database
from bindery import split, transfer
from bindery.access import actor_for
from bindery.errors import BinderyError
from bindery.provisioning.run import authorize, start_run
from bindery.provisioning.service import execute
from bindery.settings import Settings
from tests.conftest import Cli, fresh_settings
from tests.support import db
from tests.support.world import ADMIN, MEMBER, OTHER, make_world

DEVICES = ["a1", "a2", "a3", "a4", "a5"]
CODE = re.compile(r"transfer code \(shown once\): ([A-Z2-7-]+)")


@pytest.fixture
def world(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    make_world(cli, tmp_path, {"D001": DEVICES})
    cli.ok("bind", "D001", "--user", MEMBER)
    return cli


def wait_until_blocked(url: str, thread: threading.Thread) -> None:
    """PostgreSQL: until another backend of this database waits on a lock (or the thread ended)."""
    if not url.startswith("postgresql"):
        return
    deadline = time.monotonic() + 30
    while thread.is_alive() and time.monotonic() < deadline:
        waiting = db.scalar(url, "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                                 "AND wait_event_type = 'Lock'")
        if waiting:
            return
        time.sleep(0.02)
    assert not thread.is_alive(), "the second transaction neither waited nor ended"


def while_uncommitted(url: str, first: Session, second: Callable[[], None]) -> None:
    """Run ``second`` on its own thread and connection while ``first`` holds its uncommitted work; commit
    ``first`` once ``second`` waits on its locks (PostgreSQL) and let ``second`` finish."""
    thread = threading.Thread(target=second)
    thread.start()
    wait_until_blocked(url, thread)
    first.commit()
    first.close()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the second transaction never finished"


def batches(url: str) -> dict[str, tuple[object, int]]:
    """Per BID: the device count it claims and the devices it holds."""
    return {str(bid): (count, int(held)) for bid, count, held in db.rows(
        url, "SELECT b.bid, b.device_count, (SELECT COUNT(*) FROM device d WHERE d.batch_id = b.id) "
             "FROM batch b ORDER BY b.bid")}


def test_two_splits_at_once_each_take_their_own_devices(world: Cli, settings: Settings) -> None:
    url = settings.resolved_database_url
    engine = database.get_engine(settings)
    with Session(engine) as lookup:
        actor = actor_for(session=lookup, email=ADMIN)
    first = Session(engine)
    split.split(session=first, actor=actor, bid="D001", new_bid="D001-A", count=2)
    first.flush()
    outcome: list[object] = []

    def second() -> None:
        with Session(engine) as session:
            try:
                outcome.append(split.split(session=session, actor=actor, bid="D001", new_bid="D001-B", count=2))
                session.commit()
            except BinderyError as exc:
                outcome.append(str(exc))

    while_uncommitted(url, first, second)
    assert outcome == [split.SplitOutcome("D001", "D001-B", 2, 1)]
    assert batches(url) == {"D001": (1, 1), "D001-A": (2, 2), "D001-B": (2, 2)}
    assert db.rows(url, "SELECT b.bid, n.bound_count FROM binding n JOIN batch b ON b.id = n.batch_id "
                        "ORDER BY b.bid") == [("D001", 1), ("D001-A", 2), ("D001-B", 2)]
    assert [str(r[0]) for r in db.rows(url, "SELECT d.device_id FROM device d JOIN batch b ON b.id = d.batch_id "
                                            "WHERE b.bid = 'D001-B' ORDER BY d.device_id")] == ["a3", "a4"]


def add_lab(cli: Cli, receiver: str) -> None:
    cli.ok("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
           "--credentials", "bindery:pw", "--url", receiver + "/interop")


def test_a_run_allowed_before_the_offer_provisions_nothing_after_it(world: Cli, settings: Settings,
                                                                    receiver: str) -> None:
    """Provision Now passed its checks (or waited for another run's lease), then the batch was offered: the
    run refuses once it holds the lease, before any record or request."""
    add_lab(world, receiver)
    allowed = authorize(settings=settings, user=ADMIN, bid="D001", cloud_api="lab")
    world.ok("batch", "transfer", "D001", "--to", "Beta", "--user", ADMIN)
    with pytest.raises(BinderyError, match="batch D001 is on offer to another account"):
        start_run(settings=settings, batch_id=allowed.batch_id, bid=allowed.bid, api=allowed.api, actor=allowed.actor)
    url = settings.resolved_database_url
    assert db.counts(url, ("provisioning_record", "run_lease")) == {"provisioning_record": 0, "run_lease": 0}


def test_a_run_allowed_before_the_accept_never_provisions_the_receivers_batch(world: Cli, settings: Settings,
                                                                             receiver: str) -> None:
    """The giver's run (or reconcile's repair of the giver's target) decided before the batch changed hands:
    it must not put the receiver's devices into the giver's cloud."""
    add_lab(world, receiver)
    allowed = authorize(settings=settings, user=ADMIN, bid="D001", cloud_api="lab")
    offered = world.ok("batch", "transfer", "D001", "--to", "Beta", "--user", ADMIN).out
    code = CODE.search(offered)
    assert code
    world.ok("batch", "accept", code[1], "--user", OTHER)
    with pytest.raises(BinderyError, match="unknown BID D001"):
        plan = start_run(settings=settings, batch_id=allowed.batch_id, bid=allowed.bid, api=allowed.api,
                         actor=allowed.actor)
        execute(settings=settings, plan=plan)
    url = settings.resolved_database_url
    assert db.counts(url, ("provisioning_record", "run_lease")) == {"provisioning_record": 0, "run_lease": 0}


def test_a_split_while_a_run_starts_leaves_no_record_behind(world: Cli, settings: Settings, receiver: str) -> None:
    """A run allowed before a split starts while the split is uncommitted: its records are the parent's
    remaining devices only, never a moved device under the parent's BID."""
    add_lab(world, receiver)
    settings = fresh_settings()  # with the world's BINDERY_ALLOW_PRIVATE_TARGETS
    url = settings.resolved_database_url
    engine = database.get_engine(settings)
    allowed = authorize(settings=settings, user=ADMIN, bid="D001", cloud_api="lab")
    with Session(engine) as lookup:
        actor = actor_for(session=lookup, email=ADMIN)
    cutting = Session(engine)
    split.split(session=cutting, actor=actor, bid="D001", new_bid="D001-A", count=2)
    cutting.flush()
    outcome: list[str] = []

    def run() -> None:
        plan = start_run(settings=settings, batch_id=allowed.batch_id, bid=allowed.bid, api=allowed.api,
                         actor=allowed.actor)
        outcome.append(execute(settings=settings, plan=plan).summary())

    while_uncommitted(url, cutting, run)
    assert outcome == ["3 of 3 devices provisioned into lab"]
    assert db.rows(url, "SELECT d.device_id, b.bid, rb.bid FROM provisioning_record r "
                        "JOIN device d ON d.id = r.device_id JOIN batch b ON b.id = d.batch_id "
                        "JOIN batch rb ON rb.id = r.batch_id ORDER BY d.device_id") == [
        ("a3", "D001", "D001"), ("a4", "D001", "D001"), ("a5", "D001", "D001")]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_an_offer_and_a_run_starting_at_once_never_both_go_on(world: Cli, settings: Settings,
                                                            receiver: str) -> None:
    """PostgreSQL, read committed: the offer (which reads no lease yet) is made while a run that holds its
    lease reads whether the batch is on offer; one of them must be refused."""
    add_lab(world, receiver)
    url = settings.resolved_database_url
    engine = database.get_engine(settings)
    allowed = authorize(settings=settings, user=ADMIN, bid="D001", cloud_api="lab")
    with Session(engine) as lookup:
        actor = actor_for(session=lookup, email=ADMIN)
    offering = Session(engine)
    transfer.offer(session=offering, actor=actor, bid="D001", to_account="Beta",
                   expires=transfer.parse_expires("7d"))
    offering.flush()
    outcome: list[str] = []

    def run() -> None:
        try:
            plan = start_run(settings=settings, batch_id=allowed.batch_id, bid=allowed.bid, api=allowed.api,
                             actor=allowed.actor)
            execute(settings=settings, plan=plan)
            outcome.append("ran")
        except BinderyError as exc:
            outcome.append(str(exc))

    while_uncommitted(url, offering, run)
    assert len(outcome) == 1 and "batch D001 is on offer to another account" in outcome[0]
    assert db.scalar(url, "SELECT COUNT(*) FROM provisioning_record WHERE status = 'provisioned'") == 0


def test_two_parts_taking_one_new_bid_at_once_refuse_the_second_by_its_field(cli: Cli, tmp_path: Path,
                                                                            settings: Settings) -> None:
    """D001 and D001-X may both name a part D001-X-2 (each in its parent's namespace): cut at the same moment,
    the second is told the BID is taken, as when it was taken before, never an internal error."""
    make_world(cli, tmp_path, {"D001": DEVICES, "D001-X": ["x1", "x2"]})
    cli.ok("bind", "D001", "--user", MEMBER)
    cli.ok("bind", "D001-X", "--user", MEMBER)
    url = settings.resolved_database_url
    engine = database.get_engine(settings)
    with Session(engine) as lookup:
        actor = actor_for(session=lookup, email=ADMIN)
    first = Session(engine)
    split.split(session=first, actor=actor, bid="D001", new_bid="D001-X-2", count=1)
    first.flush()
    outcome: list[str] = []

    def second() -> None:
        with Session(engine) as session:
            try:
                split.split(session=session, actor=actor, bid="D001-X", new_bid="D001-X-2", count=1)
                session.commit()
                outcome.append("split")
            except BinderyError as exc:
                outcome.append(f"{type(exc).__name__}: {exc}")

    while_uncommitted(url, first, second)
    assert outcome == ["FieldError: --new-bid: BID D001-X-2 is taken: choose another"]
    assert batches(url)["D001-X"] == (2, 2)
