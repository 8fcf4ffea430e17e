"""`bindery db`: the schema."""

from __future__ import annotations

from typing import Annotated

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


def doctor(cloud_apis: Annotated[bool, typer.Option("--cloud-apis", help="Also contact each Product Cloud "
                                                      "API's target (a call that changes nothing).")] = False) -> None:
    """Check this installation: database and schema, secret key, trust anchors, signing key, Prefect API."""
    from bindery.doctor import cloud_api_findings, examine

    settings = get_settings()
    findings = examine(settings)
    if cloud_apis and findings[0].ok:
        findings += cloud_api_findings(settings)
    for finding in findings:
        console().print(finding.line())
    if not all(finding.ok for finding in findings):
        raise typer.Exit(1)
