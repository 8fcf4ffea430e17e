"""Cutting a batch in two, by count and by a file of device ids: disjoint and complete, refused cases,
and the custody chain after a split and then a transfer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bindery.crypto.certs import pem_of
from bindery.settings import Settings
from tests.conftest import Cli
from tests.support import db
from tests.support.certs import Chain, write_csv
from tests.support.world import ADMIN, MEMBER, OTHER, make_world

DEVICES = ["a5", "a1", "a3", "a2", "a4"]
TABLES = ("batch", "device", "binding", "custody", "audit_event", "provisioning_record")


@pytest.fixture
def world(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    make_world(cli, tmp_path, {"D001": DEVICES, "D002": ["b1"]})
    cli.ok("bind", "D001", "--user", MEMBER)
    return cli


def members(settings: Settings, bid: str) -> list[str]:
    return [str(r[0]) for r in db.rows(settings.resolved_database_url, "SELECT d.device_id FROM device d JOIN batch b "
                                       "ON b.id = d.batch_id WHERE b.bid = :bid ORDER BY d.device_id", bid=bid)]


def test_split_by_count_takes_the_first_devices_in_id_order(world: Cli, settings: Settings) -> None:
    done = world.ok("batch", "split", "D001", "--count", "2", "--new-bid", "D001-B", "--user", ADMIN)
    assert "split batch D001: 2 devices moved to new batch D001-B, 3 left" in done.out
    assert members(settings, "D001-B") == ["a1", "a2"] and members(settings, "D001") == ["a3", "a4", "a5"]
    parent = world.ok("batch", "show", "D001", "--user", MEMBER, "--json").json
    child = world.ok("batch", "show", "D001-B", "--user", MEMBER, "--json").json
    assert (parent["devices"], parent["bound"], parent["split_from"]) == (3, 3, None)  # type: ignore
    assert {k: child[k] for k in ("vendor", "model", "devices", "bound", "account", "split_from")} == {  # type: ignore
        "vendor": parent["vendor"], "model": parent["model"], "devices": 2, "bound": 2,  # type: ignore
        "account": "Acme", "split_from": "D001"}
    assert [(c["account"], c["bid"], c["via"], c["to"] is None) for c in child["custody"]] == [  # type: ignore
        ("Acme", "D001", "bind", False), ("Acme", "D001-B", "split", True)]
    assert [(c["bid"], c["via"]) for c in parent["custody"]] == [("D001", "bind")]  # type: ignore
    listed = world.ok("batch", "list", "--user", MEMBER, "--json").json
    assert [b["bid"] for b in listed] == ["D001", "D001-B"]  # type: ignore
    events = db.rows(settings.resolved_database_url, "SELECT subject FROM audit_event WHERE action = 'batch.split' "
                     "ORDER BY subject")
    assert events == [("D001",), ("D001-B",)]


def test_split_by_file_moves_exactly_the_named_devices(world: Cli, settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "cut.txt").write_text("a4\n\na1\n")
    world.ok("batch", "split", "D001", "--devices", str(tmp_path / "cut.txt"), "--new-bid", "D001-C", "--user", ADMIN)
    assert members(settings, "D001-C") == ["a1", "a4"] and members(settings, "D001") == ["a2", "a3", "a5"]
    everything = members(settings, "D001") + members(settings, "D001-C")
    assert sorted(everything) == sorted(DEVICES)  # disjoint and complete
    assert db.scalar(settings.resolved_database_url, "SELECT COUNT(*) FROM device") == len(DEVICES) + 1


REFUSED = [
    (["--count", "0"], 2, "--count: 0 is not from 1 to 4"),
    (["--count", "5"], 2, "--count: 5 is not from 1 to 4"),
    ([], 2, "give the number of devices to move or their device ids; use --count N or --devices FILE (one device "
            "id a line)"),
    (["--count", "1", "--devices", "{file}"], 2, "give --count or --devices, not both"),
    (["--devices", "{missing}"], 2, "--devices: cannot read"),
    (["--devices", "{file}:a1\na9"], 2, "--devices: device 'a9' is not in batch D001"),
    (["--devices", "{file}:a1\na1"], 2, "--devices: device 'a1' is named twice"),
    (["--devices", "{file}:b1"], 2, "--devices: device 'b1' is not in batch D001"),
    (["--devices", "{file}:a1\na2\na3\na4\na5"], 2, "--devices: names all 5 devices of batch D001"),
    (["--devices", "{file}:\n"], 2, "--devices: names no device"),
    (["--devices", "{file}:a1\na\x002"], 2, "--devices: line 2: device_id has control characters"),
    # another account's BID (D002 exists, unbound) is refused for its name, never "taken": nothing is learnt
    (["--count", "1", "--new-bid", "D002"], 2, "--new-bid: 'D002' must begin with D001- (or D001_) and name the part"),
    (["--count", "1", "--new-bid", "D001-"], 2, "--new-bid: 'D001-' must begin with D001-"),
    (["--count", "1", "--new-bid", "D 3"], 2, "--new-bid: 'D 3' is not a BID"),
    (["--count", "1", "--user", MEMBER], 1, "only admins may split batches"),
    (["--count", "1", "--user", OTHER], 2, "unknown BID D001"),
]


def test_refused_splits_change_nothing(world: Cli, settings: Settings, tmp_path: Path) -> None:
    """Each refusal on one world (none changes it): one line, its exit code, nothing written."""
    before = db.counts(settings.resolved_database_url, TABLES)
    for args, code, said in REFUSED:
        given = []
        for arg in args:
            if arg.startswith("{file}"):
                (tmp_path / "ids.txt").write_text(arg.removeprefix("{file}").removeprefix(":"))
                arg = str(tmp_path / "ids.txt")
            given.append(str(tmp_path / "absent.txt") if arg == "{missing}" else arg)
        if "--new-bid" not in given:
            given += ["--new-bid", "D001-3"]
        if "--user" not in given:
            given += ["--user", ADMIN]
        result = world("batch", "split", "D001", *given)
        assert result.code == code and said in result.err and result.err.count("\n") == 1, (args, result.err)
        assert db.counts(settings.resolved_database_url, TABLES) == before, args


def test_a_part_s_bid_is_taken_once_and_the_reel_s_file_imports_as_before(world: Cli, settings: Settings,
                                                                          tmp_path: Path) -> None:
    world.ok("batch", "split", "D001", "--count", "2", "--new-bid", "D001-B", "--user", ADMIN)
    before = db.counts(settings.resolved_database_url, TABLES)
    taken = world("batch", "split", "D001", "--count", "1", "--new-bid", "D001-B", "--user", ADMIN)
    assert taken.code == 2 and taken.err.strip().endswith("--new-bid: BID D001-B is taken: choose another")
    again = world("reel", "import", str(tmp_path / "D001.csv"))  # the parent's reel file, after the cut
    assert again.code == 0, again.err
    assert db.counts(settings.resolved_database_url, TABLES) == before  # no device twice, nothing changed
    assert members(settings, "D001") == ["a3", "a4", "a5"]


def test_a_new_bid_lives_in_its_parents_namespace(world: Cli, settings: Settings, tmp_path: Path) -> None:
    """A tenant can neither claim a BID outside its own batch's nor probe one; a vendor reel that later
    carries a split's BID is refused with one line; the parent's file imported again is a clear no-op."""
    url = settings.resolved_database_url
    world.ok("batch", "split", "D001", "--count", "1", "--new-bid", "D001_a", "--user", ADMIN)
    world.ok("bind", "D002", "--user", OTHER)
    chain = Chain("vendor")
    world.ok("trust", "add", *chain.write_ca(tmp_path / "vendor-ca"))
    before = db.counts(url, TABLES)
    taken = world("batch", "split", "D001", "--count", "1", "--new-bid", "D001_a", "--user", ADMIN)
    assert taken.code == 2 and "--new-bid: BID D001_a is taken: choose another" in taken.err, taken.err
    probe = world("batch", "split", "D002", "--count", "1", "--new-bid", "D001_a", "--user", OTHER)
    assert probe.code == 2 and "'D001_a' must begin with D002- (or D002_)" in probe.err, probe.err
    assert "taken" not in probe.err
    vendor = write_csv(tmp_path / "vendor.csv", [("v1", "D001_a", pem_of(chain.device("cn-v1")))])
    refused = world("reel", "import", vendor)
    assert refused.code == 2 and len(refused.err.strip().splitlines()) == 1, refused.err
    assert "vendor.csv: BID D001_a is taken by a batch split from D001 in Bindery at" in refused.err
    assert "nothing was imported" in refused.err
    again = world.ok("reel", "import", str(tmp_path / "D001.csv"))
    assert "D001.csv is already imported as batch D001 (some of its devices were split off since, into D001_a): " \
           "nothing to do" in again.out
    assert db.counts(url, TABLES) == before
    assert db.scalar(url, "SELECT COUNT(*) FROM device") == len(DEVICES) + 1  # no device twice
    world.ok("batch", "split", "D001", "--count", "1", "--new-bid", "D001_a-1", "--user", ADMIN)
    again = world.ok("reel", "import", str(tmp_path / "D001.csv"))
    assert "split off since, into D001_a, D001_a-1)" in again.out


def test_refused_while_moved_devices_are_provisioned(world: Cli, settings: Settings, receiver: str,
                                                     tmp_path: Path) -> None:
    world.ok("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
             "--credentials", "bindery:pw", "--url", receiver + "/interop")
    world.ok("provision", "D001", "--cloud-api", "lab", "--user", ADMIN)
    before = db.counts(settings.resolved_database_url, TABLES)
    refused = world("batch", "split", "D001", "--count", "2", "--new-bid", "D001-B", "--user", ADMIN)
    assert (refused.code, refused.err.strip()) == (1, "error: 2 of the 2 devices to move from batch D001 are "
                                                      "provisioned (in lab): deprovision them first (bindery "
                                                      "deprovision D001 --cloud-api lab, or --forget)")
    assert db.counts(settings.resolved_database_url, TABLES) == before
    world.ok("cloud-api", "add", "lab2", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
             "--credentials", "bindery:pw", "--url", receiver + "/interop")
    world.ok("provision", "D001", "--cloud-api", "lab2", "--user", ADMIN)
    twice = world("batch", "split", "D001", "--count", "2", "--new-bid", "D001-B", "--user", ADMIN)
    assert "2 of the 2 devices to move" in twice.err, twice.err  # in two APIs, still two devices (not 4)
    assert "(in lab, lab2)" in twice.err and "--cloud-api NAME, or --forget), for each of lab, lab2" in twice.err
    world.ok("deprovision", "D001", "--cloud-api", "lab2", "--forget", "--user", ADMIN)
    world.ok("deprovision", "D001", "--cloud-api", "lab", "--forget", "--user", ADMIN)
    world.ok("batch", "split", "D001", "--count", "2", "--new-bid", "D001-B", "--user", ADMIN)
    moved = db.rows(settings.resolved_database_url, "SELECT b.bid, COUNT(*) FROM provisioning_record r JOIN batch b "
                    "ON b.id = r.batch_id GROUP BY b.bid ORDER BY b.bid")
    assert moved == [("D001", 6), ("D001-B", 4)]  # each device's records (one per API) went with it


def test_custody_after_a_split_then_a_transfer(world: Cli, settings: Settings) -> None:
    world.ok("batch", "split", "D001", "--count", "2", "--new-bid", "D001-B", "--user", ADMIN)
    out = world.ok("batch", "transfer", "D001-B", "--to", "Beta", "--user", ADMIN).out
    code = re.search(r"shown once\): (\S+)", out)
    assert code
    world.ok("batch", "accept", code[1], "--user", OTHER)
    child = world.ok("batch", "show", "D001-B", "--user", OTHER, "--json").json
    assert child["split_from"] == "D001" and child["devices"] == 2  # type: ignore
    assert [(c["account"], c["bid"], c["via"], c["offered_by"], c["accepted_by"]) for c in child["custody"]] == [  # type: ignore
        ("Acme", "D001", "bind", None, MEMBER), ("Acme", "D001-B", "split", None, ADMIN),
        ("Beta", "D001-B", "transfer", ADMIN, OTHER)]
    assert [b["bid"] for b in world.ok("batch", "list", "--user", ADMIN, "--json").json] == ["D001"]  # type: ignore
    gone = world("batch", "show", "D001-B", "--user", ADMIN)
    assert gone.code == 2 and "unknown BID D001-B" in gone.err
    text = world.ok("batch", "show", "D001-B", "--user", OTHER).out
    assert "custody: Beta as D001-B (transfer," in text
