"""Offering a bound batch to another account and accepting it with a one-time code: the whole path with
real receivers, every refusal, the race of two accepts, and the audit on both sides."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from bindery import audit, transfer
from bindery import db as database
from bindery.access import actor_for
from bindery.errors import BinderyError
from bindery.receiver import ReceiverAuth, create_app
from bindery.settings import Settings
from tests.conftest import Cli
from tests.support import db
from tests.support.servers import serve
from tests.support.world import ADMIN, MEMBER, OTHER, make_world

TABLES = ("binding", "batch_transfer", "custody", "audit_event", "provisioning_record")
BETA_MEMBER, BETA_ADMIN2, THIRD = "bea@beta.io", "ben@beta.io", "gil@gamma.io"
CODE = re.compile(r"transfer code \(shown once\): ([A-Z2-7-]+)")


@pytest.fixture
def world(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    make_world(cli, tmp_path, {"D001": ["a1", "a2", "a3"], "D002": ["b1"]})
    cli.ok("user", "add", BETA_MEMBER, "--account", "Beta", "--role", "member")
    cli.ok("user", "add", BETA_ADMIN2, "--account", "Beta", "--role", "admin")
    cli.ok("account", "create", "Gamma")
    cli.ok("user", "add", THIRD, "--account", "Gamma", "--role", "admin")
    cli.ok("bind", "D001", "--user", MEMBER)
    return cli


@pytest.fixture
def receivers(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two reference receivers: the giver's cloud and the receiver's."""
    with serve(create_app(ReceiverAuth(basic="bindery:pw"), tmp_path / "giver.db")) as giver, \
            serve(create_app(ReceiverAuth(basic="bindery:pw"), tmp_path / "taker.db")) as taker:
        yield giver + "/interop", taker + "/interop"


def add_api(cli: Cli, name: str, url: str, user: str) -> None:
    cli.ok("cloud-api", "add", name, "--user", user, "--kind", "other", "--type", "private cloud",
           "--credentials", "bindery:pw", "--url", url)


def offer(cli: Cli, *args: str, bid: str = "D001", to: str = "Beta") -> str:
    out = cli.ok("batch", "transfer", bid, "--to", to, "--user", ADMIN, *args).out
    found = CODE.search(out)
    assert found, out
    return found[1]


def actions(settings: Settings, user: str, bid: str) -> list[str]:
    """The audit events of BID as the user's admin reads them, oldest first."""
    with Session(database.get_engine(settings)) as session:
        actor = actor_for(session=session, email=user)
        return [e.action for e in reversed(audit.read(session=session, actor=actor, bid=bid))]


def test_the_whole_path_from_distributor_to_oem(world: Cli, receivers: tuple[str, str], settings: Settings,
                                                tmp_path: Path) -> None:
    url = settings.resolved_database_url
    giver_url, taker_url = receivers
    add_api(world, "lab", giver_url, ADMIN)
    world.ok("provision", "D001", "--cloud-api", "lab", "--user", ADMIN)
    before = db.counts(url, TABLES)
    refused = world("batch", "transfer", "D001", "--to", "Beta", "--user", ADMIN)
    assert refused.code == 1 and "batch D001 is provisioned (lab holds 3 devices): deprovision it first" in refused.err
    assert db.counts(url, TABLES) == before
    world.ok("deprovision", "D001", "--cloud-api", "lab", "--forget", "--user", ADMIN)

    code = offer(world, "--note", "reel 7 of PO 4411")
    assert len(code.replace("-", "")) * 5 >= 128
    stored = db.rows(url, "SELECT code_sha256, state FROM batch_transfer")
    assert stored == [(hashlib.sha256(code.replace("-", "").encode()).hexdigest(), "offered")]
    assert code not in " ".join(str(v) for r in db.rows(url, "SELECT * FROM batch_transfer") for v in r)
    assert code not in " ".join(str(r[0]) for r in db.rows(url, "SELECT detail FROM audit_event"))
    received = world.ok("batch", "transfers", "--user", BETA_MEMBER, "--json").json
    assert [(t["bid"], t["direction"], t["from_account"], t["state"], t["devices"], t["note"])  # type: ignore
            for t in received] == [("D001", "received", "Acme", "offered", 3, "reel 7 of PO 4411")]
    made = world.ok("batch", "transfers", "--user", ADMIN, "--json").json
    assert [(t["direction"], t["to_account"]) for t in made] == [("made", "Beta")]  # type: ignore
    assert world.ok("batch", "transfers", "--user", THIRD, "--json").json == []

    add_api(world, "plant", taker_url, OTHER)
    world.ok("settings", "auto-provision", "on", "--cloud-api", "plant", "--user", OTHER)
    accepted = world.ok("batch", "accept", code.lower(), "--user", OTHER)
    assert "accepted batch D001 from account Acme: 3 devices" in accepted.out
    assert "batch D001 -> plant: 3 of 3 devices provisioned" in accepted.out

    for args in (["batch", "show", "D001", "--json"], ["provision", "D001", "--cloud-api", "lab"],
                 ["manifest", "D001", "--out", str(tmp_path / "m.csv")], ["unbind", "D001"]):
        gone = world(*args, "--user", ADMIN)
        assert gone.code == 2 and "unknown BID D001" in gone.err, args
    assert world.ok("batch", "list", "--user", ADMIN, "--json").json == []
    shown = world.ok("batch", "show", "D001", "--user", BETA_MEMBER, "--json").json
    assert {k: shown[k] for k in ("account", "bound_by", "target", "provisioned", "failed")} == {  # type: ignore
        "account": "Beta", "bound_by": OTHER, "target": "plant", "provisioned": {"plant": 3}, "failed": {}}
    chain = [(c["account"], c["bid"], c["via"], c["offered_by"], c["accepted_by"], c["to"] is None)
             for c in shown["custody"]]  # type: ignore
    assert chain == [("Acme", "D001", "bind", None, MEMBER, False), ("Beta", "D001", "transfer", ADMIN, OTHER, True)]
    assert shown["custody"][0]["to"] == shown["custody"][1]["from"]  # type: ignore
    world.ok("manifest", "D001", "--out", str(tmp_path / "beta.csv"), "--user", OTHER)
    with (tmp_path / "beta.csv").open(newline="") as manifest:
        assert [row[0] for row in csv.reader(manifest)] == ["device_id", "a1", "a2", "a3"]
    assert db.scalar(url, "SELECT COUNT(*) FROM provisioning_record r JOIN cloud_api a ON a.id = r.cloud_api_id "
                          "WHERE a.name = 'lab' AND r.status = 'removed'") == 3  # the giver's history is kept

    for side in (ADMIN, OTHER):
        assert [a for a in actions(settings, side, "D001") if a.startswith("transfer.")] == [
            "transfer.offer", "transfer.accept"], side
    assert "batch.bind" in actions(settings, ADMIN, "D001") and "batch.bind" not in actions(settings, OTHER, "D001")
    assert actions(settings, THIRD, "D001") == []
    operator = world.ok("audit", "--bid", "D001", "--json").json
    assert sum(1 for e in operator if e["action"] == "transfer.accept") == 2  # type: ignore


def test_refusals_change_nothing(world: Cli, settings: Settings) -> None:
    url = settings.resolved_database_url
    before = db.counts(url, TABLES)
    for args, code, said in [
        (["D001", "--to", "Beta", "--user", MEMBER], 1, "only admins may offer, accept or withdraw batch transfers"),
        (["D001", "--to", "Acme", "--user", OTHER], 2, "unknown BID D001"),
        (["D002", "--to", "Beta", "--user", ADMIN], 2, "unknown BID D002"),
        (["D001", "--to", "Acme", "--user", ADMIN], 2, "--to: batch D001 already belongs to account Acme"),
        (["D001", "--to", "Beta", "--expires", "7w", "--user", ADMIN], 2, "--expires: '7w' is not a duration"),
        (["D001", "--to", "Beta", "--expires", "91d", "--user", ADMIN], 2, "--expires: '91d' is not from 1m to 90d"),
        (["D001", "--to", "Beta", "--note", "x" * 501, "--user", ADMIN], 2, "--note: has 501 characters: at most 500"),
    ]:
        result = world("batch", "transfer", *args)
        assert (result.code, result.err.count("\n")) == (code, 1) and said in result.err, (args, result.err)
    assert db.counts(url, TABLES) == before

    code = offer(world)
    before = db.counts(url, TABLES)
    for args, exit_code, said in [
        (["batch", "transfer", "D001", "--to", "Gamma", "--user", ADMIN], 1, "batch D001 is on offer"),
        (["batch", "accept", code, "--user", BETA_MEMBER], 1, "bea@beta.io is a member of account Beta"),
        (["batch", "accept", code, "--user", THIRD], 2, transfer.UNKNOWN_CODE),
        (["batch", "accept", "AAAA-BBBB", "--user", OTHER], 2, transfer.UNKNOWN_CODE),
        (["batch", "accept", " - ", "--user", OTHER], 2, "give the transfer code you were sent"),
        (["batch", "accept", code, "--user", ADMIN], 2, transfer.UNKNOWN_CODE),
        (["provision", "D001", "--user", ADMIN], 1, "batch D001 is on offer to another account"),
        (["unbind", "D001", "--user", ADMIN], 1, "before you unbind it"),
        (["batch", "split", "D001", "--count", "1", "--new-bid", "D001-B", "--user", ADMIN], 1,
         "before you split it"),
        (["batch", "withdraw", "D001", "--user", OTHER], 2, "unknown BID D001"),
        (["batch", "withdraw", "D001", "--user", MEMBER], 1, "only admins"),
    ]:
        result = world(*args)
        assert result.code == exit_code and said in result.err, (args, result.err)
    # nothing changed but the three wrong codes' audit events (Gamma's, Beta's and Acme's tries)
    assert db.counts(url, TABLES) == {**before, "audit_event": before["audit_event"] + 3}

    world.ok("batch", "withdraw", "D001", "--user", ADMIN)
    withdrawn = world("batch", "accept", code, "--user", OTHER)
    assert withdrawn.code == 1
    assert withdrawn.err.endswith(f"the offer of batch D001 was withdrawn by {ADMIN}: ask them for a new offer\n")
    again = world("batch", "withdraw", "D001", "--user", ADMIN)
    assert again.code == 1 and "batch D001 is not on offer: nothing to withdraw" in again.err
    assert world.ok("batch", "show", "D001", "--user", ADMIN, "--json").json["account"] == "Acme"  # type: ignore
    for side in (ADMIN, OTHER):
        assert [a for a in actions(settings, side, "D001") if a.startswith("transfer.")] == [
            "transfer.offer", "transfer.withdraw"]

    used = offer(world)
    assert used != code
    world.ok("batch", "accept", used, "--user", OTHER)
    twice = world("batch", "accept", used, "--user", BETA_ADMIN2)
    assert twice.code == 1 and "the transfer code for batch D001 was already used" in twice.err


def test_an_unknown_account_is_said_plainly_and_audited(world: Cli, settings: Settings) -> None:
    """A typo is named in one line; the name probed is an audit event of the asking account only."""
    url = settings.resolved_database_url
    before = db.counts(url, TABLES)
    refused = world("batch", "transfer", "D001", "--to", "Nobody", "--user", ADMIN)
    assert (refused.code, refused.err.strip()) == (2, "error: --to: unknown account 'Nobody'")
    after = db.counts(url, TABLES)
    assert after == {**before, "audit_event": before["audit_event"] + 1}  # nothing else changed
    assert actions(settings, ADMIN, "D001")[-1] == "transfer.refused"
    assert "transfer.refused" not in actions(settings, OTHER, "D001")
    operator = [e for e in world.ok("audit", "--bid", "D001", "--json").json if e["action"] == "transfer.refused"]
    said = [(e["actor"], json.loads(e["detail"])) for e in operator]  # type: ignore
    assert said == [(ADMIN, {"to_account": "Nobody", "reason": "unknown account"})]


def test_a_batch_a_run_holds_is_neither_unbound_split_nor_offered(world: Cli, settings: Settings,
                                                                  receiver: str) -> None:
    """While a run's lease is live the batch keeps its owner and its devices; once it ends, each goes."""
    from bindery.provisioning import lease

    add_api(world, "lab", receiver + "/interop", ADMIN)
    url = settings.resolved_database_url
    batch_id = db.scalar(url, "SELECT id FROM batch WHERE bid = 'D001'")
    api_id = db.scalar(url, "SELECT id FROM cloud_api WHERE name = 'lab'")
    holder = lease.new_holder()
    with Session(database.get_engine(settings)) as session:  # a run of this process holds the batch
        lease.acquire(session=session, batch_id=int(str(batch_id)), api_id=int(str(api_id)), holder=holder,
                      seconds=300, wait=0, what="batch D001 into lab")
        session.commit()
    before = db.counts(url, TABLES)
    for args, doing in [(["unbind", "D001"], "unbind it"),
                        (["batch", "split", "D001", "--count", "1", "--new-bid", "D001-B"], "split it"),
                        (["batch", "transfer", "D001", "--to", "Beta"], "offer it")]:
        refused = world(*args, "--user", ADMIN)
        assert refused.code == 1 and refused.err.startswith(
            "error: a provisioning run holds batch D001 in lab (its lease runs until "), refused.err
        assert refused.err.strip().endswith(
            f"UTC): wait for it to end before you {doing}; if no run is going (its host was lost), release the "
            "lease first: bindery lease release D001 --cloud-api lab"), refused.err
    assert db.counts(url, TABLES) == before
    db.execute(url, "DELETE FROM run_lease")  # the run ended
    lease.forget(holder)
    world.ok("unbind", "D001", "--user", ADMIN)


def hold_lease(settings: Settings, holder: str) -> None:
    """A run lease of D001 into lab, live for five minutes, held by ``holder`` (host:pid:run)."""
    from bindery.provisioning import lease

    url = settings.resolved_database_url
    batch_id = int(str(db.scalar(url, "SELECT id FROM batch WHERE bid = 'D001'")))
    api_id = int(str(db.scalar(url, "SELECT id FROM cloud_api WHERE name = 'lab'")))
    with Session(database.get_engine(settings)) as session:
        lease.acquire(session=session, batch_id=batch_id, api_id=api_id, holder=holder, seconds=300, wait=0,
                      what="batch D001 into lab")
        session.commit()


def test_a_lease_left_by_a_crashed_run_does_not_hold_the_batch(world: Cli, settings: Settings,
                                                               receiver: str) -> None:
    """A run killed on this host (its process gone) holds nothing: a new run takes its lease over at once, and
    unbind goes on as well. A run on a host that went away cannot be told from a live one: the refusal says
    until when its lease runs and how to release it, and after the release unbind goes on."""
    import socket
    import subprocess
    import sys

    add_api(world, "lab", receiver + "/interop", ADMIN)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    hold_lease(settings, f"{socket.gethostname()}:{gone.pid}:0badc0de")
    world.ok("unbind", "D001", "--user", ADMIN)
    world.ok("bind", "D001", "--user", MEMBER)
    db.execute(settings.resolved_database_url, "DELETE FROM run_lease")
    hold_lease(settings, "a-host-lost-for-good:4242:0badc0de")
    refused = world("unbind", "D001", "--user", ADMIN)
    assert refused.code == 1 and "bindery lease release D001 --cloud-api lab" in refused.err, refused.err
    world.ok("lease", "release", "D001", "--cloud-api", "lab", "--user", ADMIN)
    world.ok("unbind", "D001", "--user", ADMIN)


def test_a_lease_left_in_the_givers_target_neither_holds_the_receivers_batch_nor_names_it(
        world: Cli, settings: Settings, receiver: str) -> None:
    """A giver's run killed on a lost host between taking its lease and seeing the batch was given away leaves
    a live lease in the giver's target: the receiver's unbind, split and offer are not refused for it, and no
    answer names the giver's Product Cloud API (nor tells the receiver to release a lease it cannot)."""
    add_api(world, "giverlab", receiver + "/interop", ADMIN)
    world.ok("batch", "accept", offer(world), "--user", OTHER)
    db.execute(settings.resolved_database_url, "UPDATE cloud_api SET name = 'lab' WHERE name = 'giverlab'")
    hold_lease(settings, "a-host-lost-for-good:4242:0badc0de")
    assert world.ok("lease", "list", "--user", OTHER, "--json").json == []
    assert [r["cloud_api"] for r in world.ok("lease", "list", "--user", ADMIN, "--json").json] == []  # type: ignore
    for args in (["batch", "split", "D001", "--count", "1", "--new-bid", "D001-B"],
                 ["batch", "transfer", "D001", "--to", "Gamma"], ["batch", "withdraw", "D001"],
                 ["unbind", "D001-B"], ["unbind", "D001"]):
        done = world(*args, "--user", OTHER)
        assert done.code == 0 and "lab" not in done.out + done.err, (args, done.err)


def test_wrong_codes_are_counted_and_a_run_of_them_stops_accepting(world: Cli, settings: Settings,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Each wrong code is an audit event of the trying account (never the code); after the setting's number
    of them in its window that account's accepts are refused, the right code too, until the window passes.
    Another account's tries count in that account only."""
    monkeypatch.setenv("BINDERY_TRANSFER_CODE_MAX_FAILURES", "3")
    code = offer(world)
    wrong = "AAAA-" + code[5:]
    for _ in range(3):
        tried = world("batch", "accept", wrong, "--user", OTHER)
        assert tried.code == 2 and "unknown transfer code" in tried.err
    stopped = world("batch", "accept", code, "--user", OTHER)
    assert (stopped.code, stopped.err.strip()) == (
        1, "error: 3 wrong or expired transfer codes tried in account Beta within 15 minutes: try again in 15 minutes")
    assert world("batch", "accept", wrong, "--user", THIRD).code == 2, "Gamma's own count, not Beta's"
    assert actions(settings, OTHER, "transfer code") == ["transfer.wrong_code"] * 3
    assert actions(settings, ADMIN, "transfer code") == [], "nothing in the giver's account"
    assert wrong not in db.scalar(settings.resolved_database_url, "SELECT string_agg(detail, '') FROM audit_event"
                                  if "postgresql" in settings.resolved_database_url else
                                  "SELECT group_concat(detail, '') FROM audit_event")
    monkeypatch.setenv("BINDERY_TRANSFER_CODE_WINDOW_SECONDS", "0.001")  # the window has passed
    world.ok("batch", "accept", code, "--user", OTHER)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_wrong_codes_tried_at_once_are_counted_one_after_the_other(world: Cli, settings: Settings,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL, read committed: a script sending its codes at once must not slip past the limit. A try
    that has read the account's count holds it until its own wrong code is counted; the next try waits,
    then reads that one too (SQLite's BEGIN IMMEDIATE runs them one after the other anyway)."""
    from tests.bindery.test_handover_races import wait_until_blocked
    from tests.conftest import reset_settings

    monkeypatch.setenv("BINDERY_TRANSFER_CODE_MAX_FAILURES", "1")
    code = offer(world)
    reset_settings()
    engine = database.get_engine(settings)
    with Session(engine) as lookup:
        actor = actor_for(session=lookup, email=OTHER)
    first = Session(engine)
    transfer.refuse_after_wrong_codes(first, actor)  # the first try read the count: none yet
    outcome: list[str] = []

    def second() -> None:
        with Session(engine) as session:
            try:
                transfer.accept(session=session, actor=actor, code="AAAA-" + code[5:])
            except BinderyError as exc:
                outcome.append(type(exc).__name__)

    thread = threading.Thread(target=second)
    thread.start()
    wait_until_blocked(settings.resolved_database_url, thread)
    audit.record(session=first, actor=OTHER, action="transfer.wrong_code", subject="transfer code",
                 account_id=actor.account_id)  # the first try's code was wrong
    first.commit()
    first.close()
    thread.join(timeout=60)
    assert outcome == ["TooManyAttempts"]
    assert actions(settings, OTHER, "transfer code") == ["transfer.wrong_code"]


def test_the_receiving_account_may_be_typed_in_any_case(world: Cli) -> None:
    """'beta' is Beta: the offer names the account as it is spelled, and Beta's admin accepts it."""
    out = world.ok("batch", "transfer", "D001", "--to", "bETA", "--user", ADMIN).out
    assert "to account Beta" in out, out
    code = CODE.search(out)
    assert code
    world.ok("batch", "accept", code[1], "--user", OTHER)
    assert world.ok("batch", "show", "D001", "--user", OTHER, "--json").json["account"] == "Beta"  # type: ignore
    # the operator's audit: each account's event with its account, in words
    events = world.ok("audit", "--bid", "D001", "--json").json
    assert [(e["account"], e["action"]) for e in events][:2] == [  # type: ignore
        ("Beta", "transfer.accept"), ("Acme", "transfer.accept")]
    text = world.ok("audit", "--bid", "D001").out
    assert "accepted batch D001 (3 devices) from Acme into Beta" in " ".join(text.split()), text
    assert '{"' not in text, "sentences, not the events' JSON"


def test_an_expired_offer_holds_nothing(world: Cli, settings: Settings, receiver: str) -> None:
    """Its row still says offered until someone touches the batch; every reader treats it as expired."""
    url = settings.resolved_database_url
    add_api(world, "lab", receiver + "/interop", ADMIN)
    world.ok("settings", "auto-provision", "on", "--cloud-api", "lab", "--user", ADMIN)
    offer(world, "--expires", "1m")
    db.execute(url, "UPDATE batch_transfer SET expires_at = offered_at")  # the minute has passed
    assert db.rows(url, "SELECT state FROM batch_transfer") == [("offered",)]
    listed = world.ok("batch", "transfers", "--user", ADMIN, "--json").json
    assert [t["state"] for t in listed] == ["expired"]  # type: ignore
    assert "expired" in world.ok("batch", "transfers", "--user", OTHER).out
    nothing = world("batch", "withdraw", "D001", "--user", ADMIN)
    assert nothing.code == 1 and "batch D001 is not on offer: nothing to withdraw" in nothing.err
    auto = world.ok("bind", "D001", "--user", MEMBER)  # the giver's auto-provisioning acts again
    assert "batch D001 -> lab: 3 of 3 devices provisioned" in auto.out, auto.out
    world.ok("deprovision", "D001", "--cloud-api", "lab", "--forget", "--user", ADMIN)
    world.ok("provision", "D001", "--cloud-api", "lab", "--user", ADMIN)  # and Provision Now
    world.ok("deprovision", "D001", "--cloud-api", "lab", "--forget", "--user", ADMIN)
    world.ok("batch", "accept", offer(world, to="Gamma"), "--user", THIRD)  # a new offer: the index lets it in
    assert sorted(r[0] for r in db.rows(url, "SELECT state FROM batch_transfer")) == ["accepted", "expired"]


def test_custody_entries_say_from_and_to(world: Cli, settings: Settings) -> None:
    """The issue's words in batch show --json: each owner with account, from, to, who offered and accepted."""
    world.ok("batch", "accept", offer(world), "--user", OTHER)
    shown = world.ok("batch", "show", "D001", "--user", OTHER, "--json").json
    assert [sorted(c) for c in shown["custody"]] == [sorted(  # type: ignore
        ["account", "bid", "via", "from", "to", "offered_by", "accepted_by"])] * 2
    text = world.ok("batch", "show", "D001", "--user", OTHER).out
    assert "custody: Beta as D001 (transfer," in text and f"offered by {ADMIN}, accepted by {OTHER})" in text


def test_an_expired_code_is_refused_and_audited_on_both_sides(world: Cli, settings: Settings) -> None:
    url = settings.resolved_database_url
    code = offer(world, "--expires", "1m")
    db.execute(url, "UPDATE batch_transfer SET expires_at = offered_at")  # the minute has passed
    expired = world("batch", "accept", code, "--user", OTHER)
    assert expired.code == 1 and "the transfer code for batch D001 expired at" in expired.err
    assert "ask account Acme for a new offer" in expired.err
    assert db.rows(url, "SELECT state FROM batch_transfer") == [("expired",)]
    assert world.ok("batch", "show", "D001", "--user", ADMIN, "--json").json["account"] == "Acme"  # type: ignore
    for side in (ADMIN, OTHER):
        assert actions(settings, side, "D001")[-1] == "transfer.expired"
    listed = world.ok("batch", "transfers", "--user", OTHER, "--json").json
    assert [t["state"] for t in listed] == ["expired"]  # type: ignore
    fresh = offer(world)  # an expired offer no longer holds the batch
    world.ok("batch", "accept", fresh, "--user", OTHER)


def test_expired_codes_count_towards_the_limit_of_the_account_trying_them(
        world: Cli, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each expired try is audited in both accounts, so it counts too, but only against the account whose
    user tried it: the giver, holding those events as well, is not stopped by them."""
    monkeypatch.setenv("BINDERY_TRANSFER_CODE_MAX_FAILURES", "2")
    code = offer(world, "--expires", "1m")
    db.execute(settings.resolved_database_url, "UPDATE batch_transfer SET expires_at = offered_at")
    for _ in range(2):
        assert "expired at" in world("batch", "accept", code, "--user", OTHER).err
    stopped = world("batch", "accept", code, "--user", OTHER)
    assert stopped.code == 1 and "2 wrong or expired transfer codes tried in account Beta" in stopped.err
    assert actions(settings, ADMIN, "D001")[-2:] == ["transfer.expired"] * 2, "the giver's log has both"
    giver = world("batch", "accept", "AAAA-BBBB-CCCC", "--user", ADMIN)
    assert giver.code == 2 and transfer.UNKNOWN_CODE in giver.err, "the giver's own accepts go on"


def test_stale_offer_does_not_block_a_new_one(world: Cli, settings: Settings) -> None:
    offer(world, "--expires", "1m")
    db.execute(settings.resolved_database_url, "UPDATE batch_transfer SET expires_at = offered_at")
    offer(world, to="Gamma")
    assert sorted(r[0] for r in db.rows(settings.resolved_database_url, "SELECT state FROM batch_transfer")) == [
        "expired", "offered"]


def test_two_accepts_at_once_exactly_one_wins(world: Cli, settings: Settings) -> None:
    """Two admins of the receiver paste the same code at the same moment, each on its own connection."""
    code = offer(world)
    engine = database.get_engine(settings)
    with Session(engine) as lookup:
        actors = [actor_for(session=lookup, email=OTHER), actor_for(session=lookup, email=BETA_ADMIN2)]
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def racer(i: int) -> None:
        with Session(engine) as session:
            start.wait()
            try:
                transfer.accept(session=session, actor=actors[i], code=code)
                session.commit()
                outcomes.append("won")
            except BinderyError as exc:
                session.rollback()
                outcomes.append(str(exc))

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["the transfer code for batch D001 was already used", "won"]
    url = settings.resolved_database_url
    assert db.scalar(url, "SELECT COUNT(*) FROM custody WHERE until IS NULL") == 1
    assert db.scalar(url, "SELECT COUNT(*) FROM audit_event WHERE action = 'transfer.accept'") == 2  # one a side


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_second_accept_waits_for_the_first_then_loses(world: Cli, settings: Settings) -> None:
    """PostgreSQL: the first accept holds its updated row uncommitted; the second's UPDATE waits on it and,
    once the first commits, matches no row (SQLite serialises at BEGIN IMMEDIATE, covered above)."""
    code = offer(world)
    engine = database.get_engine(settings)
    with Session(engine) as lookup:
        first_actor, second_actor = actor_for(session=lookup, email=OTHER), actor_for(session=lookup, email=BETA_ADMIN2)
    first = Session(engine)
    transfer.accept(session=first, actor=first_actor, code=code)
    first.flush()
    errors: list[str] = []

    def second() -> None:
        with Session(engine) as session:
            try:
                transfer.accept(session=session, actor=second_actor, code=code)
                session.commit()
            except BinderyError as exc:
                errors.append(str(exc))

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(timeout=1.0)
    assert thread.is_alive(), "the second accept must wait for the first transaction"
    first.commit()
    first.close()
    thread.join(timeout=10)
    assert errors == ["the transfer code for batch D001 was already used"]


def test_the_receiver_never_sees_the_givers_records(world: Cli, receiver: str, settings: Settings) -> None:
    """The giver's removed records stay its history: the receiver's device views show the batch as new."""
    from bindery.provisioning.devices import device_window, target_counts

    add_api(world, "lab", receiver + "/interop", ADMIN)
    world.ok("provision", "D001", "--cloud-api", "lab", "--user", ADMIN)
    world.ok("deprovision", "D001", "--cloud-api", "lab", "--forget", "--user", ADMIN)
    world.ok("batch", "accept", offer(world), "--user", OTHER)
    assert world.ok("devices", "D001", "--user", OTHER, "--json").json == []
    with Session(database.get_engine(settings)) as session:
        actor = actor_for(session=session, email=OTHER)
        window = device_window(session=session, actor=actor, bid="D001")
        assert (window.recorded, [r["device_id"] for r in window.rows]) == (False, ["a1", "a2", "a3"])
        assert target_counts(session=session, actor=actor, bid="D001") == []
    assert "lab" not in world.ok("batch", "show", "D001", "--user", OTHER).out
