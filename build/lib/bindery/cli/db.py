"""`bindery db`: the schema."""

from __future__ import annotations

import typer

from bindery import db as database
from bindery.cli.common import console
from bindery.settings import get_settings

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Apply every pending migration (safe to run again)."""
    settings = get_settings()
    before, after = database.upgrade(settings)
    where = database.redact_url(settings.resolved_database_url)
    if before == after:
        console().print(f"database {where} is up to date (revision {after})")
    else:
        console().print(f"database {where} upgraded from {before or 'empty'} to {after}")


def doctor() -> None:
    """Check this installation: database and schema, secret key, trust anchors, signing key, Prefect API."""
    from bindery.doctor import examine

    findings = examine(get_settings())
    for finding in findings:
        console().print(finding.line())
    if not all(finding.ok for finding in findings):
        raise typer.Exit(1)
