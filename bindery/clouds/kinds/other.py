"""Kind ``other``: any receiver of the interop protocol, with HTTP Basic credentials."""

from __future__ import annotations

from typing import Literal

from bindery.clouds.base import Connector
from bindery.clouds.kinds import _interop
from bindery.clouds.spec import Checked, CloudApiOptions, KindSpec, Target, need, need_secret, option
from bindery.clouds.urls import check_url
from bindery.errors import FieldError
from bindery.secrets import Secret
from bindery.settings import Settings

TYPES = {"aws": "AWS", "azure": "Azure", "private cloud": "private cloud"}


class OtherOptions(CloudApiOptions):
    kind: Literal["other"] = "other"
    type: str | None = option("Cloud type", "Where the receiver runs.", choices=tuple(TYPES.values()),
                              required=True)
    url: str | None = option("Receiver URL", "The receiver's https URL (plain http only to loopback).",
                             example="https://receiver.example.com/interop", max_length=2000, input="url",
                             required=True)
    credentials: str | None = option("Credentials", "username:password for HTTP Basic.", example="bindery:…",
                                     max_length=2000, secret=True, required=True)


def validate(options: dict[str, str], secret: Secret | None, settings: Settings, check: bool) -> Checked:
    label = need(options, "type")
    if label.lower() not in TYPES:
        raise FieldError("type", f"{label[:40]!r} is not one of AWS, Azure, private cloud")
    credentials = need_secret(secret, "credentials")
    if ":" not in credentials or not credentials.split(":", 1)[0]:
        raise FieldError("credentials", "expected username:password")
    url = check_url(need(options, "url"), "url", allow_private=settings.allow_private_targets,
                    allow_http_loopback=True, must_resolve=check)
    return Checked({"type": TYPES[label.lower()], "url": url, "username": credentials.split(":", 1)[0]},
                   credentials)


def connect(target: Target) -> Connector:
    from bindery.clouds.interop import basic

    return _interop.connector(target, basic(target.secret or ""))


SPEC = KindSpec(
    kind="other", title="Other interop receiver (HTTP Basic)", order=30,
    summary="Any receiver that speaks the vendors' interop protocol, on premises or in a private cloud.",
    options=OtherOptions, validate=validate, quota=_interop.QUOTA, connect=connect, removal=_interop.REMOVAL,
    reconcile=None, secret="credentials", destination=("url",))
