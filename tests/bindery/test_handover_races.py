"""Races around a batch changing hands, each on its own connection: two splits of one batch at once.

On PostgreSQL the second transaction is held at the first's locks (seen in pg_stat_activity) until the first
commits; SQLite takes its write lock at BEGIN IMMEDIATE, so there the two simply run one after the other."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlmodel import Session

from bindery import db as database
from bindery import split
from bindery.access import actor_for
from bindery.errors import BinderyError
from bindery.settings import Settings
from tests.conftest import Cli
from tests.support import db
from tests.support.world import ADMIN, MEMBER, make_world

DEVICES = ["a1", "a2", "a3", "a4", "a5"]


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

    thread = threading.Thread(target=second)
    thread.start()
    wait_until_blocked(url, thread)
    first.commit()
    first.close()
    thread.join(timeout=60)
    assert outcome == [split.SplitOutcome("D001", "D001-B", 2, 1)]
    assert batches(url) == {"D001": (1, 1), "D001-A": (2, 2), "D001-B": (2, 2)}
    assert db.rows(url, "SELECT b.bid, n.bound_count FROM binding n JOIN batch b ON b.id = n.batch_id "
                        "ORDER BY b.bid") == [("D001", 1), ("D001-A", 2), ("D001-B", 2)]
    assert [str(r[0]) for r in db.rows(url, "SELECT d.device_id FROM device d JOIN batch b ON b.id = d.batch_id "
                                            "WHERE b.bid = 'D001-B' ORDER BY d.device_id")] == ["a3", "a4"]
