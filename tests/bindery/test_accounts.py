"""`bindery account create`, `user add`, `user list` and their errors."""

from __future__ import annotations

import pytest

from bindery.settings import Settings
from tests.conftest import Cli
from tests.support import db

TABLES = ("account", "app_user", "audit_event")


def test_accounts_and_users(cli: Cli) -> None:
    cli.ok("account", "create", "Acme")
    cli.ok("account", "create", "Beta")
    cli.ok("user", "add", "Ann@Acme.io", "--account", "Acme", "--role", "admin")
    cli.ok("user", "add", "max@acme.io", "--account", "Acme")
    cli.ok("user", "add", "bob@beta.io", "--account", "Beta", "--role", "admin")
    users = cli.ok("user", "list", "--json").json
    assert [(u["email"], u["account"], u["role"]) for u in users] == [  # type: ignore[union-attr]
        ("ann@acme.io", "Acme", "admin"), ("max@acme.io", "Acme", "member"), ("bob@beta.io", "Beta", "admin")]
    only_beta = cli.ok("user", "list", "--account", "Beta", "--json").json
    assert [u["email"] for u in only_beta] == ["bob@beta.io"]  # type: ignore[union-attr]
    added = cli.ok("user", "add", "eve@beta.io", "--account", "beta")  # an account's name in any case
    assert added.out == "added member eve@beta.io to account Beta\n", "the account's name, as it is spelled"
    assert cli.ok("user", "list", "--account", "BETA", "--json").json[-1]["account"] == "Beta"  # type: ignore


@pytest.mark.parametrize(("args", "message"), [
    (["account", "create", "Acme"], "account Acme already exists"),
    (["account", "create", "ACME"], "account Acme already exists: account names must differ in more than case"),
    (["account", "create", " "], "invalid account name"),
    (["user", "add", "ann@acme.io", "--account", "Acme"], "user ann@acme.io already exists"),
    (["user", "add", "new@acme.io", "--account", "Nope"], "unknown account Nope"),
    (["user", "add", "new@acme.io", "--account", "Acme", "--role", "owner"], "invalid role 'owner'"),
    (["user", "add", "not-an-email", "--account", "Acme"], "invalid email 'not-an-email'"),
])
def test_account_and_user_errors_change_nothing(cli: Cli, settings: Settings, args: list[str], message: str) -> None:
    cli.ok("account", "create", "Acme")
    cli.ok("user", "add", "ann@acme.io", "--account", "Acme", "--role", "admin")
    before = db.counts(settings.resolved_database_url, TABLES)
    result = cli(*args)
    assert result.code == 2 and message in result.err
    assert db.counts(settings.resolved_database_url, TABLES) == before


def test_names_beyond_ascii_are_matched_regardless_of_case_on_both_databases(cli: Cli) -> None:
    """SQLite's lower() changes ASCII letters only: 'Ärzte Nord' and 'ÄRZTE NORD' are one name in any case,
    on SQLite as on PostgreSQL."""
    cli.ok("account", "create", "Ärzte Nord")
    taken = cli("account", "create", "ÄRZTE NORD")
    assert (taken.code, taken.err.strip()) == (
        2, "error: account Ärzte Nord already exists: account names must differ in more than case")
    cli.ok("user", "add", "eva@aerzte.example", "--account", "ärzte nord")
    assert cli.ok("user", "list", "--account", "ÄRZTE NORD", "--json").json[0]["account"] == "Ärzte Nord"  # type: ignore
