"""The `bindery` command: a thin layer over the same functions the flows call."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.markup import escape
from sqlalchemy.exc import DBAPIError

from bindery import crashlog
from bindery.cli import accounts, catalog, clouds, db, demo, history, operations, provisioning, reconcile, web
from bindery.cli.common import console_err
from bindery.db import is_unavailable, unavailable
from bindery.errors import BinderyError
from bindery.settings import get_settings


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
    app.command("devices")(provisioning.devices)
    app.command("reconcile")(reconcile.reconcile)
    app.command("runs")(history.runs)
    app.command("audit")(history.audit)
    app.add_typer(provisioning.settings_app, name="settings")
    app.add_typer(provisioning.lease_app, name="lease")
    app.add_typer(clouds.cloud_app, name="cloud-api")
    app.add_typer(clouds.keys_app, name="keys")
    app.command("receiver")(clouds.receiver)
    app.command("demo")(demo.demo)
    app.command("web")(web.web)
    app.add_typer(web.token_app, name="token")
    accounts.user_app.command("set-password")(web.set_password)
    app.command("doctor")(db.doctor)
    app.command("deploy")(operations.deploy)
    app.command("alerts")(operations.alerts)
    app.command("automations")(operations.automations)
    app.command("worker")(operations.worker)
    app.command("serve")(operations.serve)
    app.callback()(version_option)
    return app


def _print_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import version

        print(f"bindery {version('bindery')}")
        raise typer.Exit()


def version_option(
    version: Annotated[bool, typer.Option("--version", help="Print Bindery's version and exit.", is_eager=True,
                                          callback=_print_version)] = False,
) -> None:
    """Bindery: catalog vendor reels, bind them, provision their devices."""


@functools.cache
def command() -> Callable[..., Any]:
    """The click command behind the app, built once per process (Typer re-reads every signature on each
    call, which costs tens of milliseconds)."""
    return typer.main.get_command(build_app())


def main() -> None:
    """The CLI's error boundary. Usage errors are Click's (exit 2, with usage); Bindery's errors are one
    line with their own code; anything else is one line naming the log that holds the traceback (exit 1)."""
    crashlog.route_warnings()
    try:
        command()(prog_name="bindery")
    except BinderyError as exc:
        _fail(str(exc), exc.exit_code)
    except DBAPIError as exc:  # an engine used outside a session scope
        if is_unavailable(exc):
            _fail(str(unavailable(exc, get_settings().resolved_database_url)), 1)
        else:
            _fail(crashlog.record(exc, " ".join(sys.argv[:3])), 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:
        _fail(crashlog.record(exc, " ".join(sys.argv[:3])), 1)


def _fail(message: str, code: int) -> None:
    try:
        sys.stdout.flush()
    except OSError:  # stdout itself failed (a full disk): do not let the interpreter report it again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    console_err().print(f"[red]error:[/red] {escape(message)}", markup=True, highlight=False, soft_wrap=True)
    sys.exit(code)
