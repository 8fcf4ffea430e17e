"""A small world for ownership tests: two accounts, an admin and a member, imported batches."""

from __future__ import annotations

from pathlib import Path

from bindery.crypto.certs import pem_of
from bindery.csvsafe import neutralise
from tests.conftest import Cli
from tests.support.certs import Chain, write_csv

ADMIN, MEMBER, OTHER = "ann@acme.io", "max@acme.io", "bob@beta.io"


def make_world(cli: Cli, tmp_path: Path, batches: dict[str, list[str]]) -> Chain:
    """Accounts Acme (ADMIN, MEMBER) and Beta (OTHER); one imported batch per BID with these device ids
    (written as bindery-csv reels, so escaped for spreadsheets as Bindery writes them)."""
    chain = Chain("world")
    cli.ok("trust", "add", *chain.write_ca(tmp_path / "world-ca"))
    for bid, device_ids in batches.items():
        rows = [(neutralise(d), neutralise(bid), pem_of(chain.device(f"cn-{d}"))) for d in device_ids]
        cli.ok("reel", "import", write_csv(tmp_path / f"{bid}.csv", rows))
    cli.ok("account", "create", "Acme")
    cli.ok("account", "create", "Beta")
    cli.ok("user", "add", ADMIN, "--account", "Acme", "--role", "admin")
    cli.ok("user", "add", MEMBER, "--account", "Acme", "--role", "member")
    cli.ok("user", "add", OTHER, "--account", "Beta", "--role", "admin")
    return chain
