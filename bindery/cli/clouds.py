"""`bindery cloud-api`, `bindery keys` and `bindery receiver`: Product Cloud APIs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from bindery.cli.common import (
    JsonOption,
    UserOption,
    acting,
    console,
    console_err,
    print_json,
    print_table,
    secret_argument,
)
from bindery.clouds import config
from bindery.clouds.connectors import check_on_add
from bindery.clouds.tokens import jwks, signing_key
from bindery.clouds.urls import deferred_to_proxy
from bindery.db import session_scope
from bindery.errors import BadInput
from bindery.settings import get_settings

cloud_app = typer.Typer(help="Product Cloud APIs of your account (admins).", no_args_is_help=True)
keys_app = typer.Typer(help="Bindery's interop signing key.", no_args_is_help=True)

Opt = Annotated[str | None, typer.Option()]


def _cloud_api_command(adding: bool) -> Callable[..., None]:
    """`cloud-api add` and `cloud-api update` take the same options; update changes only those given."""

    def command(
        name: str,
        kind: Annotated[str | None, typer.Option(help=f"add: one of {', '.join(config.KINDS)}.")] = None,
        user: UserOption = None,
        account_id: Annotated[str | None, typer.Option(help="aws: 12-digit AWS account ID (JWT audience).")] = None,
        gateway_id: Annotated[str | None, typer.Option(help="aws: API Gateway ID.")] = None,
        region: Annotated[str | None, typer.Option(help="aws, aws-iot: AWS region.")] = None,
        stage: Annotated[str | None, typer.Option(help="aws: API Gateway stage ($default: an HTTP API).")] = None,
        interop_url: Annotated[str | None, typer.Option(help="azure: https URL of the interop receiver.")] = None,
        subscription_id: Annotated[str | None, typer.Option(help="azure: subscription UUID (JWT audience).")] = None,
        type_: Annotated[str | None, typer.Option("--type", help="other: AWS, Azure or private cloud.")] = None,
        credentials: Annotated[str | None, typer.Option(help="other: username:password, @FILE or env:NAME.")] = None,
        url: Annotated[str | None, typer.Option(help="other: https URL (plain http only to loopback); aws: any "
                                                     "https URL instead of gateway/region/stage.")] = None,
        policy: Annotated[str | None, typer.Option(help="aws-iot: IoT policy to attach.")] = None,
        thing_prefix: Annotated[str | None, typer.Option(help="aws-iot: prefix of thing names.")] = None,
        thing_type: Annotated[str | None, typer.Option(help="aws-iot: thing type.")] = None,
        thing_group: Annotated[str | None, typer.Option(help="aws-iot: thing group.")] = None,
        role_arn: Annotated[str | None, typer.Option(help="aws-iot: role to assume in the target account.")] = None,
        endpoint_url: Annotated[str | None, typer.Option(help="aws-iot: private endpoint (or a test server).")] = None,
        connection_string: Annotated[str | None, typer.Option(
            help="azure-iot-hub: service connection string, @FILE or env:NAME.")] = None,
        quota: Annotated[str | None, typer.Option(
            help="Rate per second when the provider's quota was raised (default: the published quota).")] = None,
        pace: Annotated[str | None, typer.Option(
            help="Fraction of the quota to pace at (default 0.97; throttling slows it down for a while).")] = None,
        chunk_size: Annotated[str | None, typer.Option(
            help="Most devices per request or chunk (interop kinds size requests to the time budget below it).")
        ] = None,
        timeout: Annotated[str | None, typer.Option(help="Seconds before a request to the target times out.")] = None,
        no_check: Annotated[bool, typer.Option("--no-check", help="Do not contact the target now.")] = False,
    ) -> None:
        settings = get_settings()
        options = {"account_id": account_id, "gateway_id": gateway_id, "region": region, "stage": stage,
                   "interop_url": interop_url, "subscription_id": subscription_id, "type": type_,
                   "url": url, "policy": policy, "thing_prefix": thing_prefix,
                   "thing_type": thing_type, "thing_group": thing_group, "role_arn": role_arn,
                   "endpoint_url": endpoint_url, "quota": quota, "pace": pace, "chunk_size": chunk_size,
                   "timeout": timeout}
        with session_scope(settings) as session:
            actor = acting(session, user)
            if not adding:
                if kind is not None:
                    raise BadInput("--kind cannot change: remove the API and add it again")
                kind = config.get_cloud_api(session=session, actor=actor, name=name).kind
            if kind is None:
                raise BadInput("--kind is required")
            raw = config.pick_secret(kind, {"credentials": credentials, "connection_string": connection_string})
            secret = secret_argument(raw, f"--{config.SECRET_OPTIONS[kind].replace('_', '-')}") if raw else None
            check = None if no_check else check_on_add(session=session, settings=settings, name=name)
            change = config.add_cloud_api if adding else config.update_cloud_api
            api = change(session=session, settings=settings, actor=actor, name=name,
                         options=options, secret=secret, check=check, **({"kind": kind} if adding else {}))
            target = config.settings_of(api).get("url")
        done = "added" if adding else "updated"
        console().print(f"{done} Product Cloud API {name} ({kind})" + ("" if no_check else ", checked"))
        deferred = deferred_to_proxy(target) if target else None
        if deferred:
            console_err().print(f"note: {deferred}")

    return command


cloud_app.command("add", help="Register a Product Cloud API for your account.")(_cloud_api_command(adding=True))
cloud_app.command("update", help="Change options of a Product Cloud API (its records are kept).")(
    _cloud_api_command(adding=False))


@cloud_app.command("list")
def list_(user: UserOption = None, as_json: JsonOption = False) -> None:
    """List your account's Product Cloud APIs."""
    with session_scope() as session:
        rows = [config.public_view(api) for api in config.list_cloud_apis(session=session,
                                                                          actor=acting(session, user))]
    if as_json:
        print_json(rows)
    else:
        print_table("Product Cloud APIs", ["name", "kind", "target", "created by"],
                    [[r["name"], r["kind"], r.get("url") or r.get("host_name") or r.get("region"), r["created_by"]]
                     for r in rows])


@cloud_app.command("show")
def show(name: str, user: UserOption = None, as_json: JsonOption = False) -> None:
    """Show one Product Cloud API (secrets redacted)."""
    with session_scope() as session:
        view = config.public_view(config.get_cloud_api(session=session, actor=acting(session, user), name=name))
    if as_json:
        print_json(view)
    else:
        for key, value in view.items():
            console().print(f"{key:>18}: {value}")


@cloud_app.command("remove")
def remove(name: str, user: UserOption = None) -> None:
    """Remove a Product Cloud API."""
    with session_scope() as session:
        config.remove_cloud_api(session=session, actor=acting(session, user), name=name)
    console().print(f"removed Product Cloud API {name}")


@keys_app.command("public")
def public(as_jwks: Annotated[bool, typer.Option("--jwks", help="Print a JWKS instead of PEM.")] = False) -> None:
    """Print the public key receivers use to verify Bindery's tokens (made on first use)."""
    settings = get_settings()
    with session_scope(settings) as session:
        signer = signing_key(session=session, settings=settings)
    print(jwks(signer) if as_jwks else signer.public_pem, end="" if not as_jwks else "\n")


def receiver(
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    public_key: Annotated[list[Path] | None, typer.Option(help="PEM public key(s) trusted for Bearer JWTs.")] = None,
    audience: Annotated[str | None, typer.Option(help="Expected JWT audience (account or subscription ID).")] = None,
    basic: Annotated[str | None, typer.Option("--basic", help="USER:PASS for Basic auth, @FILE or env:NAME.")] = None,
    db: Annotated[Path, typer.Option(help="SQLite file for received devices.")] = Path("receiver.db"),
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate to serve https.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert.")] = None,
    no_policy: Annotated[bool, typer.Option("--no-policy", help="Answer policyApplied: false, as a vendor "
                                                                "receiver whose IoT policy is missing.")] = False,
) -> None:
    """Run the reference receiver of the interop protocol."""
    import uvicorn

    from bindery.receiver import ReceiverAuth, create_app

    if (basic is None) == (not public_key):
        raise BadInput("give either --public-key FILE (with --audience) or --basic USER:PASS")
    if public_key and not audience:
        raise BadInput("--audience is required with --public-key")
    keys = tuple(p.read_text() for p in public_key or [])
    auth = ReceiverAuth(public_keys=keys, audience=audience,
                        basic=secret_argument(basic, "--basic").value if basic else None)
    if (tls_cert is None) != (tls_key is None):
        raise BadInput("--tls-cert and --tls-key go together")
    tls = {"ssl_certfile": str(tls_cert), "ssl_keyfile": str(tls_key)} if tls_cert and tls_key else {}
    uvicorn.run(create_app(auth, db, policy_applied=not no_policy), host=host, port=port, log_level="info",
                timeout_graceful_shutdown=5, **tls)  # type: ignore[arg-type]
