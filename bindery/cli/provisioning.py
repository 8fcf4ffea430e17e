"""`bindery provision`, `bindery settings`, `bindery batch set-target`: provisioning from the CLI."""

from __future__ import annotations

import re
import shlex
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bindery.cli.common import (
    JsonOption,
    UserOption,
    acting,
    acting_email,
    console,
    console_err,
    iso_time,
    print_folded,
    print_json,
    print_table,
)
from bindery.db import session_scope
from bindery.errors import BadInput, BinderyError
from bindery.provisioning import service
from bindery.provisioning.records import POLICY_WARNING
from bindery.provisioning.run import RunReport
from bindery.settings import get_settings

settings_app = typer.Typer(help="Account settings (admins change them).", no_args_is_help=True)
CloudApiOption = Annotated[str | None, typer.Option("--cloud-api", help="Product Cloud API name.")]


class ProvisioningIncomplete(BinderyError):
    """Some devices are not provisioned; the report lists them (exit code 1)."""


def progress_bar(label: str) -> Progress:
    """A live bar on a terminal only: piped or logged, a stopped bar left an empty line on stderr before the
    command's one line (an error, or the report)."""
    err = console_err()
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("chunks"), TimeElapsedColumn(),
                    console=err, transient=True, disable=not err.is_terminal)


def print_report(report: RunReport) -> None:
    head = f"batch {report.bid} -> {report.cloud_api}:"
    if report.nothing_to_do:
        console().print(f"{head} {report.summary()}")
        return
    console().print(f"{head} {report.provisioned} of {report.devices} devices provisioned ({report.already_present} "
                    f"already present), {report.failed} failed" + (
                        f", {report.not_tried} not tried" if report.not_tried else ""))
    print_folded("failed", report.failures)
    if report.request_sizes:
        console().print(f"requests sized to the target: {report.sizes_summary()}")
    if report.warned:
        console_err().print(f"warning: {len(report.warned)} devices {POLICY_WARNING} (first: {report.warned[0]}); "
                            "create the policy in the Product Cloud and attach it")
    if not report.complete:
        raise ProvisioningIncomplete(f"{report.not_provisioned} devices of batch {report.bid} are not provisioned "
                                     f"into {report.cloud_api} ({report.problem()}); run `bindery provision "
                                     f"{report.bid} --cloud-api {report.cloud_api}` again to retry them")


def provision(bid: str, cloud_api: CloudApiOption = None, user: UserOption = None) -> None:
    """Provision Now: the batch's devices into a Product Cloud API (default: the batch's target)."""
    settings = get_settings()
    with progress_bar(f"provisioning {bid}") as bar:
        task = bar.add_task("chunks", total=None)
        report = service.provision_batch(settings=settings, user=acting_email(user), bid=bid, cloud_api=cloud_api,
                                         progress=lambda done, total: bar.update(task, completed=done, total=total))
    print_report(report)


def bind_command(bid: str | None, qr: str | None, cloud_api: str | None, user: str | None) -> None:
    from bindery.binding import bid_from_qr

    if (bid is None) == (qr is None):
        raise BadInput("give either a BID or --qr TEXT")
    wanted = bid_from_qr(qr) if qr is not None else str(bid)
    settings = get_settings()
    with progress_bar(f"provisioning {wanted}") as bar:
        task = bar.add_task("chunks", total=None)
        outcome, report = service.bind_and_provision(
            settings=settings, user=acting_email(user), bid=wanted, cloud_api=cloud_api,
            progress=lambda done, total: bar.update(task, completed=done, total=total))
    if outcome.already:
        console().print(f"batch {outcome.bid} is already bound to your account: nothing to do")
    else:
        console().print(f"bound batch {outcome.bid}: {outcome.devices} devices")
    if report is not None:
        print_report(report)


@settings_app.command("auto-provision")
def auto_provision(state: Annotated[str, typer.Argument(help="on or off")], cloud_api: CloudApiOption = None,
                   user: UserOption = None) -> None:
    """Provision every later bind of the account into the default Product Cloud API (or stop)."""
    if state not in ("on", "off"):
        raise BadInput(f"auto-provision takes on or off, not {state!r}")
    with session_scope() as session:
        current = service.set_auto_provision(session=session, actor=acting(session, user), enabled=state == "on",
                                             cloud_api=cloud_api)
    console().print(f"auto-provision {'on' if current.enabled else 'off'} (default Product Cloud API: "
                    f"{current.cloud_api or 'none'})")


@settings_app.command("show")
def show(user: UserOption = None) -> None:
    """The account's settings."""
    with session_scope() as session:
        actor = acting(session, user)
        current = service.account_settings(session=session, actor=actor)
    print_json({"account": actor.account_name, "auto_provision": current.enabled,
                "default_cloud_api": current.cloud_api})


def deprovision(bid: str, cloud_api: Annotated[str, typer.Option("--cloud-api", help="Product Cloud API name.")],
                forget: Annotated[bool, typer.Option(help="Only mark the records removed (interop kinds have no "
                                                          "removal: remove the devices in the cloud first).")] = False,
                user: UserOption = None) -> None:
    """Remove the batch's devices from a Product Cloud API (admins)."""
    from bindery.provisioning.removal import deprovision_batch

    settings = get_settings()
    report = deprovision_batch(settings=settings, user=acting_email(user), bid=bid, cloud_api=cloud_api,
                               forget=forget)
    verb = "marked removed (records only)" if report.forgotten else "removed"
    console().print(f"batch {bid}: {report.removed} devices {verb} from {cloud_api}, {len(report.failures)} failed")
    print_folded("not removed", report.failures)
    if report.failures:
        raise ProvisioningIncomplete(f"{len(report.failures)} devices of batch {bid} are still in {cloud_api}")


lease_app = typer.Typer(help="Run leases: which run holds a batch and target (admins).", no_args_is_help=True)


@lease_app.command("list")
def lease_list(user: UserOption = None, as_json: JsonOption = False) -> None:
    """The account's batches that a provisioning run holds, with the holder and expiry."""
    from bindery.provisioning.leases import list_leases

    with session_scope() as session:
        rows = list_leases(session=session, actor=acting(session, user))
    if as_json:
        print_json(rows)
    else:
        print_table("Run leases", ["BID", "Product Cloud API", "holder", "expires at", "expired"],
                    [[r["bid"], r["cloud_api"], r["holder"], r["expires_at"], r["expired"]] for r in rows])


@lease_app.command("release")
def lease_release(bid: str, cloud_api: Annotated[str, typer.Option("--cloud-api", help="Product Cloud API name.")],
                  user: UserOption = None) -> None:
    """Clear a stuck lease by hand (only when no run is going: a lost host); audited."""
    from bindery.provisioning.leases import clear_lease

    with session_scope() as session:
        holder = clear_lease(session=session, actor=acting(session, user), bid=bid, cloud_api=cloud_api)
    console().print(f"released the lease of {bid} into {cloud_api} (held by {holder})")


def devices(bid: str, cloud_api: CloudApiOption = None,
            status: Annotated[str | None, typer.Option(help="pending, provisioned, failed or removed.")] = None,
            limit: Annotated[int, typer.Option(help="Devices per page (1 to 1000).")] = 100,
            after: Annotated[str | None, typer.Option(help="Start after this cursor (the previous page says "
                                                           "which).")] = None,
            as_json: JsonOption = False,
            as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False,
            user: UserOption = None) -> None:
    """Each device of a batch in each Product Cloud API: status, attempts, last error, reference; a page at
    a time (the last line says how to get the next one)."""
    import csv
    import sys

    from bindery.provisioning.devices import COLUMNS, MAX_PAGE, device_page

    if not 1 <= limit <= MAX_PAGE:
        raise BadInput(f"--limit: {limit} is not from 1 to {MAX_PAGE}")
    with session_scope() as session:
        try:
            page = device_page(session=session, actor=acting(session, user), bid=bid, cloud_api=cloud_api,
                               status=status, after=after, limit=limit)
        except BadInput as exc:  # in the CLI's words: its options are flags
            raise BadInput(re.sub(r"^(status|after): ", r"--\1: ", str(exc))) from None
    rows = page.rows
    if as_json:
        print_json(rows)
    elif as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        print_table(f"Devices of {bid}", ["device", "Product Cloud API", "status", "attempts", "last error",
                                           "external reference", "provisioned at"],
                    [[r["device_id"], r["cloud_api"], r["status"], r["attempts"], r["last_error"], r["external_ref"],
                      iso_time(r["provisioned_at"])] for r in rows])
    if page.next_after is not None:
        flags = [f"--cloud-api {shlex.quote(cloud_api)}" if cloud_api else "", f"--status {status}" if status else "",
                 f"--limit {limit}" if limit != 100 else "", "--json" if as_json else "", "--csv" if as_csv else ""]
        command = " ".join(["bindery devices", shlex.quote(bid), *filter(None, flags), "--after", page.next_after])
        console_err().print(f"{len(rows)} devices shown; next page: {command}")
