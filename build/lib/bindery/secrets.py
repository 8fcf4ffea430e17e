"""Secrets at rest: Fernet-encrypted with BINDERY_SECRET_KEY (or, on the embedded default, a key
generated into BINDERY_HOME with a warning). Secret values never reach logs, output or parameters."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from bindery.errors import BinderyError
from bindery.settings import Settings

log = logging.getLogger("bindery.secrets")
REDACTED = "********"


def _key_from_file(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key + b"\n")
    log.warning("generated a secret key at %s; set BINDERY_SECRET_KEY in production and keep it safe", path)
    return key


def secret_box(settings: Settings) -> Fernet:
    key = settings.secret_key.encode() if settings.secret_key else _key_from_file(settings.secret_key_file)
    try:
        return Fernet(key)
    except ValueError:
        raise BinderyError("BINDERY_SECRET_KEY is not a valid Fernet key (32 url-safe base64 bytes)") from None


def encrypt(settings: Settings, value: str) -> str:
    return secret_box(settings).encrypt(value.encode("utf-8")).decode("ascii")


def decrypt(settings: Settings, token: str) -> str:
    try:
        return secret_box(settings).decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise BinderyError("cannot decrypt a stored secret: BINDERY_SECRET_KEY differs from the one that "
                           "encrypted it") from None


@dataclass(frozen=True)
class Secret:
    """A secret value, always literal: configuration code never resolves files or variables from it.
    Only the CLI turns ``@FILE`` / ``env:NAME`` into a Secret (bindery.cli.common.secret_argument);
    the web takes every string as it is."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Secret({REDACTED})"
