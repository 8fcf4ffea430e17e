"""The `bindery` command: a thin layer over the same functions the flows call."""

from __future__ import annotations

import sys

import typer

from bindery.cli import accounts, catalog, clouds, db, demo, provisioning, reconcile, web
from bindery.cli.common import console_err
from bindery.errors import BinderyError


def build_app() -> typer.Typer:
    app = typer.Typer(help="Bindery: catalog vendor reels, bind them, provision their devices.",
                      no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
    app.add_typer(db.app, name="db")
    app.add_typer(catalog.trust_app, name="trust")
    app.add_typer(catalog.reel_app, name="reel")
    app.add_typer(catalog.batch_app, name="batch")
    app.add_typer(accounts.account_app, name="account")
    app.add_typer(accounts.user_app, name="user")
    app.command("bind")(accounts.bind)
    app.command("unbind")(accounts.unbind)
    app.command("manifest")(accounts.export)
    app.command("provision")(provisioning.provision)
    app.command("deprovision")(provisioning.deprovision)
    app.command("reconcile")(reconcile.reconcile)
    app.add_typer(provisioning.settings_app, name="settings")
    app.add_typer(clouds.cloud_app, name="cloud-api")
    app.add_typer(clouds.keys_app, name="keys")
    app.command("receiver")(clouds.receiver)
    app.command("demo")(demo.demo)
    app.command("web")(web.web)
    app.add_typer(web.token_app, name="token")
    accounts.user_app.command("set-password")(web.set_password)
    return app


def main() -> None:
    """Usage errors are Click's (exit 2, with usage); Bindery's errors are one line with their own code."""
    try:
        build_app()()
    except BinderyError as exc:
        console_err().print(f"[red]error:[/red] {exc}", markup=True, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
