"""`bindery web`, `bindery token`, `bindery user set-password`: the console and its credentials."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from bindery import audit
from bindery.cli.common import JsonOption, console, print_json, print_table
from bindery.db import session_scope
from bindery.errors import BadInput
from bindery.settings import get_settings, operator_variable

token_app = typer.Typer(help="Personal API tokens (Bearer) for the HTTP API.", no_args_is_help=True)


def web(host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port.")] = 8000) -> None:
    """Serve the console and the HTTP API (OpenAPI at /docs)."""
    import uvicorn

    from bindery.db import ensure_schema
    from bindery.web.app import create_app

    settings = get_settings()
    ensure_schema(settings)
    console().print(f"Bindery console on http://{host}:{port}/  (API docs: /docs)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", proxy_headers=True,
                timeout_graceful_shutdown=5)


def set_password(email: str,
                 password_env: Annotated[str | None, typer.Option(
                     help="Read the password from this environment variable instead of asking.")] = None) -> None:
    """Set a user's console password (argon2id; logs the user out everywhere)."""
    from bindery.web.credentials import set_password as store

    if password_env:
        password = operator_variable(password_env)
        if not password:
            raise BadInput(f"--password-env: {password_env} is not set")
    elif sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")
    with session_scope() as session:
        store(session=session, email=email, password=password, actor=audit.operator_name())
    console().print(f"password set for {email.strip().lower()}")


@token_app.command("create")
def token_create(user: Annotated[str, typer.Option("--user", help="Email of the token's user.")],
                 name: Annotated[str, typer.Option(help="What the token is for.")] = "api") -> None:
    """Create a token for a user; it is printed once and stored only as a hash."""
    from bindery.web.credentials import create_token

    with session_scope() as session:
        token, row = create_token(session=session, email=user, name=name, actor=audit.operator_name())
        token_id = row.id
    console().print(f"token {token_id} for {user.strip().lower()} (shown once, keep it safe):")
    print(token)


@token_app.command("list")
def token_list(user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None,
               as_json: JsonOption = False) -> None:
    """List tokens (never the tokens themselves)."""
    from bindery.web.credentials import list_tokens

    with session_scope() as session:
        rows = list_tokens(session=session, email=user)
    if as_json:
        print_json(rows)
        return
    print_table("API tokens", ["id", "user", "name", "prefix", "created", "last used", "revoked"],
                [[r["id"], r["user"], r["name"], r["prefix"], r["created_at"], r["last_used_at"] or "—",
                  "yes" if r["revoked"] else ""] for r in rows])


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="Token id (from token list).")]) -> None:
    """Revoke a token at once."""
    from bindery.web.credentials import revoke_token

    with session_scope() as session:
        revoke_token(session=session, token_id=token_id, actor=audit.operator_name())
    console().print(f"revoked token {token_id}")
