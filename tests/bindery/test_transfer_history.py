"""What each side keeps of an offer once it is over: the expired code tried after the offer was closed as
expired is still an audited attempt on both sides; the offer says the batch as it was offered; the giver's
records of a batch it gave away stay its history, never checked or repaired as the receiver's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlmodel import Session

from bindery import audit
from bindery import db as database
from bindery.access import actor_for
from bindery.settings import Settings
from tests.conftest import Cli
from tests.support import db
from tests.support.world import ADMIN, MEMBER, OTHER, make_world

CODE = re.compile(r"transfer code \(shown once\): ([A-Z2-7-]+)")
THIRD = "gil@gamma.io"


@pytest.fixture
def world(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    make_world(cli, tmp_path, {"D001": ["a1", "a2", "a3", "a4"]})
    cli.ok("account", "create", "Gamma")
    cli.ok("user", "add", THIRD, "--account", "Gamma", "--role", "admin")
    cli.ok("bind", "D001", "--user", MEMBER)
    return cli


def offer(cli: Cli, *args: str, to: str = "Beta") -> str:
    found = CODE.search(cli.ok("batch", "transfer", "D001", "--to", to, "--user", ADMIN, *args).out)
    assert found
    return found[1]


def actions(settings: Settings, user: str, bid: str = "D001") -> list[str]:
    with Session(database.get_engine(settings)) as session:
        actor = actor_for(session=session, email=user)
        return [e.action for e in reversed(audit.read(session=session, actor=actor, bid=bid))]


def add_api(cli: Cli, name: str, user: str, receiver: str) -> None:
    cli.ok("cloud-api", "add", name, "--user", user, "--kind", "other", "--type", "private cloud",
           "--credentials", "bindery:pw", "--url", receiver + "/interop")


def given_away_after_forgetting(world: Cli, receiver: str) -> None:
    """Acme provisioned D001 into lab, forgot its records (the cloud still holds the devices), gave it to Beta."""
    add_api(world, "lab", ADMIN, receiver)
    world.ok("provision", "D001", "--cloud-api", "lab", "--user", ADMIN)
    world.ok("deprovision", "D001", "--cloud-api", "lab", "--forget", "--user", ADMIN)
    world.ok("batch", "accept", offer(world), "--user", OTHER)


def test_an_expired_code_tried_after_a_new_offer_is_audited_on_both_sides(world: Cli, settings: Settings) -> None:
    """The giver's new offer closed the stale one as expired; the old code tried then is still the
    'expired attempt' the issue audits in both accounts, said as the first try would say it."""
    url = settings.resolved_database_url
    code = offer(world, "--expires", "1m")
    db.execute(url, "UPDATE batch_transfer SET expires_at = offered_at")  # the minute has passed
    offer(world, to="Gamma")
    assert sorted(r[0] for r in db.rows(url, "SELECT state FROM batch_transfer")) == ["expired", "offered"]
    tried = world("batch", "accept", code, "--user", OTHER)
    assert tried.code == 1 and "the transfer code for batch D001 expired at" in tried.err, tried.err
    assert "ask account Acme for a new offer" in tried.err
    for side in (ADMIN, OTHER):
        assert actions(settings, side)[-1] == "transfer.expired", side


def test_an_offer_over_says_the_batch_as_it_was_offered(world: Cli) -> None:
    """Each side's list keeps an offer as it was made: what the batch's owner did with it since (here a
    split) is that account's own, never shown to an account that no longer holds it, or never did."""
    world.ok("batch", "accept", offer(world), "--user", OTHER)
    found = CODE.search(world.ok("batch", "transfer", "D001", "--to", "Gamma", "--user", OTHER).out)
    assert found
    world.ok("batch", "withdraw", "D001", "--user", OTHER)
    world.ok("batch", "split", "D001", "--count", "3", "--new-bid", "D001-B", "--user", OTHER)
    made = world.ok("batch", "transfers", "--user", ADMIN, "--json").json
    assert [(t["bid"], t["state"], t["devices"]) for t in made] == [("D001", "accepted", 4)]  # type: ignore
    offered = world.ok("batch", "transfers", "--user", THIRD, "--json").json
    assert [(t["bid"], t["state"], t["devices"]) for t in offered] == [("D001", "withdrawn", 4)]  # type: ignore
    own = world.ok("batch", "transfers", "--user", OTHER, "--json").json
    assert [(t["direction"], t["devices"]) for t in own] == [("made", 4), ("received", 4)]  # type: ignore


def test_reconcile_checks_a_transferred_batch_in_its_owners_targets_only(world: Cli, settings: Settings,
                                                                          receiver: str, tmp_path: Path) -> None:
    """The giver forgot its records (--forget) while its cloud still holds the devices, then gave the batch
    away: the nightly reconcile (and its repair) must neither report the giver's target as the receiver's
    nor mark the giver's records provisioned, which would leave the receiver a batch it can neither split
    nor unbind."""
    url = settings.resolved_database_url
    given_away_after_forgetting(world, receiver)
    checked = world.ok("reconcile", "--repair", "--report", tmp_path / "report.json")
    assert "0 targets checked" in checked.out, checked.out
    assert db.rows(url, "SELECT status, COUNT(*) FROM provisioning_record GROUP BY status") == [("removed", 4)]
    assert world.ok("reconcile", "--last", "--account", "Beta", "--json").json == []
    assert world.ok("runs", "--user", OTHER, "--json").json == []
    world.ok("batch", "split", "D001", "--count", "1", "--new-bid", "D001-B", "--user", OTHER)


def test_the_receivers_unbind_keeps_the_givers_records(world: Cli, settings: Settings, receiver: str) -> None:
    """Unbinding forgets the unbinding account's records only: the giver's removed records stay its history."""
    url = settings.resolved_database_url
    given_away_after_forgetting(world, receiver)
    add_api(world, "plant", OTHER, receiver)
    world.ok("provision", "D001", "--cloud-api", "plant", "--user", OTHER)
    world.ok("deprovision", "D001", "--cloud-api", "plant", "--forget", "--user", OTHER)
    world.ok("unbind", "D001", "--user", OTHER)
    assert db.rows(url, "SELECT a.name, r.status, COUNT(*) FROM provisioning_record r JOIN cloud_api a "
                        "ON a.id = r.cloud_api_id GROUP BY a.name, r.status") == [("lab", "removed", 4)]
    world.ok("bind", "D001", "--user", THIRD)
    assert world.ok("devices", "D001", "--user", THIRD, "--json").json == []


def test_a_note_is_shown_as_written_never_as_markup(world: Cli) -> None:
    """The giver's note is the receiver's to read: brackets in it are text, neither styling nor a link in the
    receiver's terminal, and never a failed listing."""
    note = "[/bold] see [link=https://e.io]here[/link]"
    offer(world, "--note", note)
    for user in (OTHER, ADMIN):
        listed = world("batch", "transfers", "--user", user)
        assert listed.code == 0, listed.err
        assert note in " ".join(listed.out.split()), listed.out


def test_names_with_brackets_are_printed_as_typed(world: Cli) -> None:
    """An account named 'Omega [/x]' (the operator allows any printable name): the giver's offer still prints
    its code, and the receiver's batch show its custody, each name as it is spelled."""
    world.ok("account", "create", "Omega [/x]")
    world.ok("user", "add", "olga@omega.io", "--account", "Omega [/x]", "--role", "admin")
    made = world("batch", "transfer", "D001", "--to", "Omega [/x]", "--user", ADMIN)
    assert made.code == 0, made.err
    assert "offered batch D001 to account Omega [/x] until" in made.out
    code = CODE.search(made.out)
    assert code
    world.ok("batch", "accept", code[1], "--user", "olga@omega.io")
    shown = world.ok("batch", "show", "D001", "--user", "olga@omega.io").out
    assert "custody: Omega [/x] as D001 (transfer," in shown, shown


def test_binding_a_batch_on_offer_again_starts_no_provisioning(world: Cli, settings: Settings,
                                                               receiver: str) -> None:
    """The giver's auto-provisioning does not act on its batch on offer: a member binding it again is told it
    is already bound, with no run started or refused, and the batch's target is left as the offer has it."""
    url = settings.resolved_database_url
    add_api(world, "lab", ADMIN, receiver)
    world.ok("settings", "auto-provision", "on", "--cloud-api", "lab", "--user", ADMIN)
    offer(world)
    again = world("bind", "D001", "--user", MEMBER)
    assert (again.code, again.err.strip()) == (0, ""), again.err
    assert "batch D001 is already bound to your account: nothing to do" in again.out
    assert db.counts(url, ("run", "provisioning_record")) == {"run": 0, "provisioning_record": 0}
    assert world.ok("batch", "show", "D001", "--user", ADMIN, "--json").json["target"] is None  # type: ignore
