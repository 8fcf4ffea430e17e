"""The progress a batch's pages read: a batch that changed hands shows its new account only its own runs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session

from bindery import db as database
from bindery import transfer
from bindery.access import actor_for
from bindery.errors import NotFound
from bindery.provisioning import progress
from bindery.settings import Settings
from tests.bindery.test_transfer import add_api, receivers  # noqa: F401 (a fixture)
from tests.conftest import Cli
from tests.support.world import ADMIN, MEMBER, OTHER, make_world


def last_runs(settings: Settings, user: str) -> dict[str, tuple[str, str]]:
    with Session(database.get_engine(settings)) as session:
        found = progress.last_runs(session=session, actor=actor_for(session=session, email=user), bid="D001")
    return {target: (run.kind, run.status) for target, run in found.items()}


def test_a_transferred_batch_shows_the_receiver_its_own_runs_only(
        cli: Cli, tmp_path: Path, settings: Settings, receivers: tuple[str, str],  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    make_world(cli, tmp_path, {"D001": ["a1", "a2", "a3"]})
    cli.ok("bind", "D001", "--user", MEMBER)
    giver_url, taker_url = receivers
    add_api(cli, "lab", giver_url, ADMIN)
    cli.ok("provision", "D001", "--cloud-api", "lab", "--user", ADMIN)
    cli.ok("deprovision", "D001", "--cloud-api", "lab", "--forget", "--user", ADMIN)
    assert last_runs(settings, ADMIN) == {"lab": ("deprovision", "completed")}

    with Session(database.get_engine(settings)) as session:
        offered = transfer.offer(session=session, actor=actor_for(session=session, email=ADMIN), bid="D001",
                                 to_account="Beta", expires=timedelta(hours=1))
        session.commit()
        transfer.accept(session=session, actor=actor_for(session=session, email=OTHER), code=offered.code)
        session.commit()
    assert last_runs(settings, OTHER) == {}, "the giver's runs stay its history"
    with pytest.raises(NotFound):
        last_runs(settings, ADMIN)

    add_api(cli, "plant", taker_url, OTHER)
    cli.ok("provision", "D001", "--cloud-api", "plant", "--user", OTHER)
    assert last_runs(settings, OTHER) == {"plant": ("provision", "completed")}
