"""The `bindery` command: a thin layer over the same functions the flows call."""

from __future__ import annotations

import sys

import typer

from bindery.cli import catalog, db, demo
from bindery.cli.common import console_err
from bindery.errors import BinderyError


def build_app() -> typer.Typer:
    app = typer.Typer(help="Bindery: catalog vendor reels, bind them, provision their devices.",
                      no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
    app.add_typer(db.app, name="db")
    app.add_typer(catalog.trust_app, name="trust")
    app.add_typer(catalog.reel_app, name="reel")
    app.add_typer(catalog.batch_app, name="batch")
    app.command("demo")(demo.demo)
    return app


def main() -> None:
    try:
        build_app()(standalone_mode=False)
    except BinderyError as exc:
        console_err().print(f"[red]error:[/red] {exc}", markup=True, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.BadParameter, typer.main.click.UsageError) as exc:  # type: ignore[attr-defined]
        exc.show()
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
