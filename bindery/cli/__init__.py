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
from typer.core import TyperGroup

from bindery import crashlog
from bindery.cli import (
    accounts,
    catalog,
    clouds,
    db,
    demo,
    history,
    operations,
    provisioning,
    reconcile,
    transfers,  # noqa: F401  (adds the batch transfer and split commands)
    web,
)
from bindery.cli.common import console_err
from bindery.db import is_unavailable, unavailable
from bindery.errors import BinderyError
from bindery.settings import get_settings

CATALOG, BINDING, CLOUDS, PROVISIONING, OPERATIONS, CONSOLE = (
    "Catalog: reels and their trust anchors", "Binding: batches to accounts", "Clouds: Product Cloud APIs",
    "Provisioning", "Operations", "Console")


class WorkflowOrder(TyperGroup):
    """--help lists the panels in the workflow's order (Typer would put every group after the commands)."""

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted(self.commands, key=lambda name: (ORDER.index(name) if name in ORDER else len(ORDER), name))


ENTRIES: list[tuple[str, Any, str]] = [  # name, command or group, --help panel: in the workflow's order
    ("trust", catalog.trust_app, CATALOG), ("reel", catalog.reel_app, CATALOG), ("batch", catalog.batch_app, CATALOG),
    ("bind", accounts.bind, BINDING), ("unbind", accounts.unbind, BINDING), ("manifest", accounts.export, BINDING),
    ("account", accounts.account_app, BINDING), ("user", accounts.user_app, BINDING),
    ("cloud-api", clouds.cloud_app, CLOUDS), ("keys", clouds.keys_app, CLOUDS), ("receiver", clouds.receiver, CLOUDS),
    ("provision", provisioning.provision, PROVISIONING), ("devices", provisioning.devices, PROVISIONING),
    ("deprovision", provisioning.deprovision, PROVISIONING), ("reconcile", reconcile.reconcile, PROVISIONING),
    ("settings", provisioning.settings_app, PROVISIONING), ("lease", provisioning.lease_app, PROVISIONING),
    ("doctor", db.doctor, OPERATIONS), ("runs", history.runs, OPERATIONS), ("audit", history.audit, OPERATIONS),
    ("db", db.app, OPERATIONS), ("deploy", operations.deploy, OPERATIONS), ("worker", operations.worker, OPERATIONS),
    ("serve", operations.serve, OPERATIONS), ("alerts", operations.alerts, OPERATIONS),
    ("automations", operations.automations, OPERATIONS), ("demo", demo.demo, OPERATIONS),
    ("web", web.web, CONSOLE), ("token", web.token_app, CONSOLE)]
ORDER = [name for name, _, _ in ENTRIES]


def build_app() -> typer.Typer:
    """The commands grouped in --help by the workflow they belong to."""
    app = typer.Typer(help="Bindery: catalog vendor reels, bind them, provision their devices.", cls=WorkflowOrder,
                      no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
    for name, entry, panel in ENTRIES:
        if isinstance(entry, typer.Typer):
            app.add_typer(entry, name=name, rich_help_panel=panel)
        else:
            app.command(name, rich_help_panel=panel)(entry)
    accounts.user_app.command("set-password")(web.set_password)
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
