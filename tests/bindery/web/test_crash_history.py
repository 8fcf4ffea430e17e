"""A crashed run and the run that restarted it, as the console's run history and `bindery runs` show them:
the crashed one failed "crashed: process lost", the rerun naming (and linking) the run it restarts."""

from __future__ import annotations

from contextlib import closing

from sqlmodel import Session, select

from bindery import db as database
from bindery import runs
from bindery.models.catalog import Batch
from bindery.models.clouds import CloudApi
from bindery.provisioning import run
from bindery.recovery import CrashedRun, close_crashed
from bindery.settings import Settings
from tests.bindery.web.conftest import Console
from tests.bindery.web.test_batches import ON_SQLITE, add_lab
from tests.bindery.web.test_pages import login
from tests.support.world import ADMIN, MEMBER

DEAD = "0b5e55ed-0000-4000-8000-00000000dead"


@ON_SQLITE
def test_the_crashed_run_and_its_restart_are_linked(console: Console, settings: Settings) -> None:
    console.cli.ok("bind", "W002", "--user", ADMIN)
    add_lab(console)
    with Session(database.get_engine(settings)) as session:
        batch = session.exec(select(Batch).where(Batch.bid == "W002")).one()
        api = session.exec(select(CloudApi).where(CloudApi.name == "lab")).one()
        assert batch.id is not None and api.id is not None
        dead = runs.begin(session=session, kind=runs.PROVISION, batch_id=batch.id, bid="W002", api_id=api.id,
                          api_name="lab", started_by=ADMIN, origin=runs.Origin("prefect-api", DEAD))
        session.commit()
    close_crashed(settings, CrashedRun(DEAD, "provision-batch", "CRASHED", "d-1"))
    plan = run.plan_run(settings=settings, user=ADMIN, bid="W002", cloud_api="lab",
                        origin=runs.Origin("recovery", "f-2", replaces=DEAD))
    with closing(login(console, MEMBER)) as member:
        page = member.get("/batches/W002").text
        live = member.get("/batches/W002/live", headers={"HX-Request": "true"}).text
    run.finish_run(settings=settings, plan=plan, results=[])
    assert f'<tr id="run-{dead}"' in page and "crashed: process lost" in page
    assert f'<a class="replaces" href="#run-{dead}">(restarts run #{dead})</a>' in page
    assert f"(restarts run #{dead}, which crashed)" in live, "the running restart says what it restarts"
    shown = console.cli.ok("runs", "W002", "--user", ADMIN).out
    assert f"(restarts #{dead})" in shown, shown
