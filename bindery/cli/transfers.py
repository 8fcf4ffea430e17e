"""`bindery batch transfer|transfers|accept|withdraw|split`: batches changing hands, and cut in two."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from bindery import split, transfer
from bindery.cli.catalog import batch_app
from bindery.cli.common import (
    JsonOption,
    UserOption,
    acting,
    acting_email,
    console,
    iso_time,
    print_json,
    print_table,
)
from bindery.db import session_scope
from bindery.errors import BadInput
from bindery.models.transfers import EXPIRED, OFFERED
from bindery.settings import get_settings


@batch_app.command("transfer")
def batch_transfer(
    bid: str,
    to: Annotated[str, typer.Option("--to", help="The receiving account.")],
    expires: Annotated[str, typer.Option("--expires", help="The code's life: 30m, 12h, 7d (at most 90d).")] = "7d",
    note: Annotated[str | None, typer.Option("--note", help="A note the receiver sees with the offer.")] = None,
    user: UserOption = None,
) -> None:
    """Offer a batch to another account (admins); prints the one-time code to hand to its admin."""
    lifetime = transfer.parse_expires(expires)
    with session_scope() as session:
        offered = transfer.offer(session=session, actor=acting(session, user), bid=bid, to_account=to,
                                 expires=lifetime, note=note)
    console().print(f"offered batch {offered.bid} to account {offered.to_account} until "
                    f"{offered.expires_at:%Y-%m-%d %H:%M} UTC")
    console().print(f"transfer code (shown once): {offered.code}")
    console().print(f"its admin accepts with: bindery batch accept {offered.code} --user ADMIN")


@batch_app.command("transfers")
def batch_transfers(user: UserOption = None, as_json: JsonOption = False) -> None:
    """Offers made and received by your account."""
    with session_scope() as session:
        rows = transfer.list_transfers(session=session, actor=acting(session, user))
    if as_json:
        print_json(rows)
        return
    if not rows:
        console().print("no offers made or received by your account: an admin offers a batch with "
                        "bindery batch transfer BID --to ACCOUNT")
        return
    print_table("Transfers", ["BID", "direction", "from", "to", "state", "devices", "offered by", "ended", "note"],
                [[r["bid"], r["direction"], r["from_account"], r["to_account"], *state_words(r), r["note"]]
                 for r in rows], whole=("BID",))
    if any(r["direction"] == "received" and r["state"] == OFFERED for r in rows):
        console().print("accept one with: bindery batch accept CODE (the code the giving account sent you)")


def state_words(row: dict[str, Any]) -> tuple[str, int, str, str]:
    """State, devices, who offered, and when it ended, as the console's batch list says them: who accepted or
    withdrew an offer, and when; until when an open offer's code works."""
    state, ended = row["state"], iso_time(row["closed_at"])
    if state == OFFERED:
        state, ended = "on offer", f"open until {iso_time(row['expires_at'])}"
    elif state == EXPIRED:
        state, ended = "expired unaccepted", iso_time(row["expires_at"])
    else:
        state = f"{state} by {row['closed_by']}"
    return state, row["devices"], row["offered_by"], ended


@batch_app.command("accept")
def batch_accept(code: Annotated[str, typer.Argument(help="The transfer code you were sent.")],
                 user: UserOption = None) -> None:
    """Accept a batch offered to your account (admins); auto-provisioning then acts as on a bind."""
    from bindery.cli.provisioning import print_report, progress_bar
    from bindery.provisioning.service import accept_and_provision

    with progress_bar("provisioning") as bar:
        task = bar.add_task("chunks", total=None)
        accepted, report = accept_and_provision(
            settings=get_settings(), user=acting_email(user), code=code,
            progress=lambda done, total: bar.update(task, completed=done, total=total))
    console().print(f"accepted batch {accepted.bid} from account {accepted.from_account}: {accepted.devices} devices")
    if report is not None:
        print_report(report)
    else:  # no auto-provisioning: what the receiver does with it next
        console().print(f"next: bindery provision {accepted.bid} --cloud-api NAME   (or bindery manifest "
                        f"{accepted.bid} --out {accepted.bid}.csv for a manual upload)")


@batch_app.command("withdraw")
def batch_withdraw(bid: str, user: UserOption = None) -> None:
    """Withdraw your account's open offer of a batch (admins): its code is void."""
    with session_scope() as session:
        transfer.withdraw(session=session, actor=acting(session, user), bid=bid)
    console().print(f"withdrew the offer of batch {bid}")


def _device_ids(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"--devices: cannot read {path} ({exc.__class__.__name__})") from None


@batch_app.command("split")
def batch_split(
    bid: str,
    new_bid: Annotated[str, typer.Option("--new-bid", help="BID of the new batch: the batch's BID, '-' or '_', "
                                                           "then a suffix (D001-2).")],
    count: Annotated[int | None, typer.Option("--count", help="Move the first N devices (device-id order).")] = None,
    devices: Annotated[Path | None, typer.Option("--devices", help="Move these devices: one device id a line.")]
    = None,
    user: UserOption = None,
) -> None:
    """Cut a batch in two (admins): the new batch keeps the vendor, model, owner and custody chain."""
    device_ids = _device_ids(devices) if devices is not None else None
    with session_scope() as session:
        done = split.split(session=session, actor=acting(session, user), bid=bid, new_bid=new_bid, count=count,
                           device_ids=device_ids)
    console().print(f"split batch {done.bid}: {done.moved} devices moved to new batch {done.new_bid}, "
                    f"{done.left} left")
