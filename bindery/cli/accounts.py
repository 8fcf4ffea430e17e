"""`bindery account`, `bindery user`, `bind`, `unbind`, `manifest`: ownership of batches."""

from __future__ import annotations

from typing import Annotated

import typer

from bindery import accounts, audit, binding, manifest
from bindery.cli.common import JsonOption, UserOption, acting, console, console_err, iso_time, print_json, print_table
from bindery.db import session_scope
from bindery.settings import get_settings

account_app = typer.Typer(help="Accounts (tenants).", no_args_is_help=True)
user_app = typer.Typer(help="Users of accounts.", no_args_is_help=True)


@account_app.command("create")
def account_create(name: str) -> None:
    """Create an account."""
    with session_scope() as session:
        accounts.create_account(session=session, name=name, actor=audit.operator_name())
    console().print(f"created account {name.strip()}")


@user_app.command("add")
def user_add(
    email: str,
    account: Annotated[str, typer.Option(help="The user's account.")],
    role: Annotated[str, typer.Option(help="admin or member.")] = "member",
) -> None:
    """Add a user to an account."""
    with session_scope() as session:
        user = accounts.add_user(session=session, email=email, account=account, role=role,
                                 actor=audit.operator_name())
        named = accounts.get_account(session=session, name=account).name  # as it is spelled, not as typed
    console().print(f"added {user.role} {user.email} to account {named}")


@user_app.command("list")
def user_list(
    account: Annotated[str | None, typer.Option(help="Only this account's users.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List users."""
    with session_scope() as session:
        rows = accounts.list_users(session=session, account=account)
    if as_json:
        print_json(rows)
    else:
        print_table("Users", ["email", "account", "role", "created at"],
                    [[r["email"], r["account"], r["role"], iso_time(r["created_at"])] for r in rows])


def bind(
    bid: Annotated[str | None, typer.Argument(help="Product Batch ID.")] = None,
    qr: Annotated[str | None, typer.Option("--qr", help="Text of the reel's QR code (a URL).")] = None,
    cloud_api: Annotated[str | None, typer.Option("--cloud-api", help="Admins: provision into this API.")] = None,
    user: UserOption = None,
) -> None:
    """Bind a batch to your account, by BID or by the text of its QR code (and provision it when an admin
    picks a Product Cloud API, or the account's auto-provision setting is on)."""
    from bindery.cli.provisioning import bind_command

    bind_command(bid, qr, cloud_api, user)


def unbind(bid: str, user: UserOption = None) -> None:
    """Release a batch from your account (admins)."""
    with session_scope() as session:
        binding.unbind(session=session, actor=acting(session, user), bid=bid)
    console().print(f"unbound batch {bid}")


def export(
    bid: str,
    out: Annotated[str, typer.Option(help="File to write (.gz compresses), or - for stdout.")],
    user: UserOption = None,
) -> None:
    """Write the batch's Manifest File (admins)."""
    settings = get_settings()
    with session_scope(settings) as session:
        report = manifest.export_manifest(session=session, actor=acting(session, user), bid=bid, out=out,
                                          chunk_size=settings.manifest_chunk_size)
    if out != "-":
        console().print(f"wrote {report.rows} devices of batch {report.bid} to {out}")
    else:
        console_err().print(f"wrote {report.rows} devices of batch {report.bid}")
