"""`bindery cloud-api`, `bindery keys` and `bindery receiver`: Product Cloud APIs."""

from __future__ import annotations

import inspect
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
from bindery.clouds.kinds import kinds, spec_of, specs
from bindery.clouds.spec import CloudApiOptions, form_fields
from bindery.clouds.tokens import jwks, signing_key
from bindery.clouds.urls import deferred_to_proxy
from bindery.db import session_scope
from bindery.errors import BadInput, flag
from bindery.settings import get_settings

cloud_app = typer.Typer(help="Product Cloud APIs of your account (admins).", no_args_is_help=True)
keys_app = typer.Typer(help="Bindery's interop signing key.", no_args_is_help=True)

def _kind_options() -> list[inspect.Parameter]:
    """One --option per option name of any kind, its help naming the kinds that take it (read from the
    specs: a new kind's options appear here without a line of this module)."""
    helps: dict[str, list[str]] = {}
    secret: set[str] = set()
    for spec in specs():
        for field in spec.fields:
            if field.advanced:
                continue
            helps.setdefault(field.name, []).append(f"{spec.kind}: {field.help}")
            if field.secret:
                secret.add(field.name)
    parameters = []
    for name, texts in helps.items():
        text = " ".join(texts) + (" Give it as @FILE or env:NAME to keep it off the command line." if name in secret
                                  else "")
        parameters.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
            str | None, typer.Option(f"--{name.replace('_', '-')}", help=text)]))
    for field in form_fields(CloudApiOptions):
        parameters.append(inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                            annotation=Annotated[str | None, typer.Option(help=field.help)]))
    return parameters


def _cloud_api_command(adding: bool) -> Callable[..., None]:
    """`cloud-api add` and `cloud-api update` take the same options; update changes only those given."""

    def command(name: str, kind: str | None = None, user: str | None = None, no_check: bool = False,
                **given: str | None) -> None:
        settings = get_settings()
        with session_scope(settings) as session:
            actor = acting(session, user)
            if not adding:
                if kind is not None:
                    raise BadInput("--kind cannot change: remove the API and add it again")
                kind = config.get_cloud_api(session=session, actor=actor, name=name).kind
            if kind is None:
                raise BadInput("--kind is required")
            secrets = {f.name for spec in specs() for f in spec.fields if f.secret}
            raw = config.pick_secret(kind, {k: v for k, v in given.items() if k in secrets})
            secret = secret_argument(raw, flag(spec_of(kind).secret or "")) if raw else None
            options = {k: v for k, v in given.items() if k not in secrets}
            check = None if no_check else check_on_add(session=session, settings=settings, name=name)
            if adding:
                api = config.add_cloud_api(session=session, settings=settings, actor=actor, name=name, kind=kind,
                                           options=options, secret=secret, check=check)
            else:
                api = config.update_cloud_api(session=session, settings=settings, actor=actor, name=name,
                                              options=options, secret=secret, check=check)
            target = config.settings_of(api).get("url")
        done = "added" if adding else "updated"
        console().print(f"{done} Product Cloud API {name} ({kind})" + ("" if no_check else ", checked"))
        deferred = deferred_to_proxy(target) if target else None
        if deferred:
            console_err().print(f"note: {deferred}")

    keyword = inspect.Parameter.KEYWORD_ONLY
    command.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter("name", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str),
        inspect.Parameter("kind", keyword, default=None, annotation=Annotated[str | None, typer.Option(
            help=f"add: one of {', '.join(kinds())}.")]),
        inspect.Parameter("user", keyword, default=None, annotation=UserOption),
        *_kind_options(),
        inspect.Parameter("no_check", keyword, default=False, annotation=Annotated[bool, typer.Option(
            "--no-check", help="Do not contact the target now.")]),
    ])
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
                    [[r["name"], r["kind"], spec_of(r["kind"]).target_of(r), r["created_by"]] for r in rows])


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
