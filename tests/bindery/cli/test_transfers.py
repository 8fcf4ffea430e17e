"""What `bindery batch transfers` and `bindery batch show` say to the two sides of an offer: what became of
each offer and when, the next command, and on the giver's batch that it is on offer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bindery.settings import Settings
from tests.conftest import Cli
from tests.support import db
from tests.support.world import ADMIN, MEMBER, OTHER, make_world

CODE = re.compile(r"transfer code \(shown once\): ([A-Z2-7-]+)")
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"  # the CLI's one time format


@pytest.fixture
def world(cli: Cli, tmp_path: Path) -> Cli:
    make_world(cli, tmp_path, {"D001": ["a1", "a2", "a3"], "D002": ["b1"]})
    cli.ok("bind", "D001", "--user", ADMIN)
    cli.ok("bind", "D002", "--user", ADMIN)
    return cli


def offer(cli: Cli, bid: str) -> str:
    found = CODE.search(cli.ok("batch", "transfer", bid, "--to", "Beta", "--user", ADMIN).out)
    assert found
    return found[1]


def rows(cli: Cli, user: str) -> list[str]:
    return [line for line in cli.ok("batch", "transfers", "--user", user).out.splitlines() if "D00" in line]


def test_each_offer_says_what_became_of_it_by_whom_and_when(world: Cli, settings: Settings) -> None:
    offer(world, "D001")
    world.ok("batch", "withdraw", "D001", "--user", ADMIN)
    world.ok("batch", "accept", offer(world, "D001"), "--user", OTHER)
    offer(world, "D002")
    db.execute(settings.resolved_database_url, "UPDATE batch_transfer SET expires_at = offered_at "
                                                "WHERE state = 'offered'")
    offer(world, "D002")
    made = rows(world, ADMIN)
    assert len(made) == 4, made
    assert re.search(rf"D002 .* on offer .* {re.escape(ADMIN)} .* open until {STAMP}", made[0]), made[0]
    assert re.search(rf"D002 .* expired unaccepted .* {STAMP}", made[1]), made[1]
    assert re.search(rf"D001 .* accepted by {re.escape(OTHER)} .* {STAMP}", made[2]), made[2]
    assert re.search(rf"D001 .* withdrawn by {re.escape(ADMIN)} .* {STAMP}", made[3]), made[3]
    giver = world.ok("batch", "transfers", "--user", ADMIN).out
    assert "bindery batch accept" not in giver  # nothing offered to Acme: nothing to accept
    receiver = world.ok("batch", "transfers", "--user", OTHER).out
    assert receiver.rstrip().endswith(
        "accept one with: bindery batch accept CODE (the code the giving account sent you)"), receiver


def test_no_offers_says_so_and_how_one_is_made(world: Cli) -> None:
    listed = world.ok("batch", "transfers", "--user", MEMBER)
    assert listed.out == ("no offers made or received by your account: an admin offers a batch with "
                          "bindery batch transfer BID --to ACCOUNT\n")
    assert world.ok("batch", "transfers", "--user", MEMBER, "--json").json == []


def test_the_givers_batch_show_says_it_is_on_offer_and_how_to_withdraw_it(world: Cli) -> None:
    offer(world, "D001")
    shown = world.ok("batch", "show", "D001", "--user", MEMBER).out
    assert re.search(rf"^    on offer: to Beta since {STAMP} by {re.escape(ADMIN)}, the code works until {STAMP}; "
                     r"withdraw it with: bindery batch withdraw D001$", shown, re.M), shown
    assert "on offer" not in world.ok("batch", "show", "D002", "--user", ADMIN).out
    assert "on offer" not in world.ok("batch", "show", "D001").out  # the catalog's view: no account's offers
    world.ok("batch", "withdraw", "D001", "--user", ADMIN)
    assert "on offer" not in world.ok("batch", "show", "D001", "--user", ADMIN).out


def test_custody_lines_say_how_each_owner_took_the_batch_in_the_clis_time_format(world: Cli) -> None:
    world.ok("batch", "split", "D001", "--count", "1", "--new-bid", "D001-B", "--user", ADMIN)
    world.ok("batch", "accept", offer(world, "D001-B"), "--user", OTHER)
    custody = [line.strip() for line in world.ok("batch", "show", "D001-B", "--user", OTHER).out.splitlines()
               if line.strip().startswith("custody:")]
    assert [re.sub(STAMP, "T", line) for line in custody] == [
        f"custody: Acme as D001 (bind, T to T, bound by {ADMIN})",
        f"custody: Acme as D001-B (split, T to T, split by {ADMIN})",
        f"custody: Beta as D001-B (transfer, T to now, offered by {ADMIN}, accepted by {OTHER})",
    ]


def test_an_accept_without_auto_provisioning_says_what_next(world: Cli) -> None:
    accepted = world.ok("batch", "accept", offer(world, "D001"), "--user", OTHER)
    assert accepted.out == ("accepted batch D001 from account Acme: 3 devices\n"
                            "next: bindery provision D001 --cloud-api NAME   (or bindery manifest D001 --out "
                            "D001.csv for a manual upload)\n")
