"""Configuring an account's Product Cloud APIs: per-kind validation, secrets encrypted, show redacted."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from bindery import audit
from bindery.access import Action, Actor, require
from bindery.clouds.urls import check_url
from bindery.errors import AlreadyExists, BadInput, NotFound
from bindery.models.clouds import CloudApi
from bindery.secrets import REDACTED, Secret, decrypt, encrypt
from bindery.settings import Settings

KINDS = ("aws", "azure", "other", "aws-iot", "azure-iot-hub")
DEFAULT_STAGE = "$default"
COMMON_OPTIONS = ("quota", "pace", "chunk_size", "timeout")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
OTHER_TYPES = {"aws": "AWS", "azure": "Azure", "private cloud": "private cloud"}
SECRET_OPTIONS = {"other": "credentials", "azure-iot-hub": "connection_string"}


@dataclass(frozen=True)
class Checked:
    settings: dict[str, str]
    secret: str | None = None


def _need(options: dict[str, str], field: str) -> str:
    value = (options.get(field) or "").strip()
    if not value:
        raise BadInput(f"--{field.replace('_', '-')} is required for this kind")
    return value


def _need_secret(secret: Secret | None, field: str) -> str:
    if secret is None or not secret.value:
        raise BadInput(f"--{field.replace('_', '-')} is required for this kind")
    return secret.value


def _match(value: str, pattern: re.Pattern[str], field: str, what: str) -> str:
    if not pattern.fullmatch(value):
        raise BadInput(f"--{field.replace('_', '-')}: {value!r} is not {what}")
    return value


def aws_gateway_url(gateway: str, region: str, stage: str) -> str:
    """The receiver's URL on a REST API stage, or on an HTTP API's ``$default`` stage (no stage in the path)."""
    prefix = "" if stage == DEFAULT_STAGE else f"/{stage}"
    return f"https://{gateway}.execute-api.{region}.amazonaws.com{prefix}/interop"


def _aws(options: dict[str, str], _secret: Secret | None, settings: Settings, check: bool) -> Checked:
    """Gateway, region and stage make the URL; ``url`` instead takes any https URL (a custom domain, an HTTP
    API without a stage). The JWT audience stays the account ID either way."""
    account = _match(_need(options, "account_id"), re.compile(r"\d{12}"), "account_id", "a 12-digit AWS account ID")
    out = {"account_id": account, "audience": account}
    for field_name, pattern, what in (
        ("gateway_id", re.compile(r"[a-z0-9]{1,32}"), "an API Gateway ID (lower-case letters and digits)"),
        ("region", REGION, "an AWS region such as eu-central-1"),
        ("stage", re.compile(r"\$default|[A-Za-z0-9_-]{1,128}"), "an API Gateway stage (or $default)"),
    ):
        if options.get(field_name) or not options.get("url"):
            out[field_name] = _match(_need(options, field_name), pattern, field_name, what)
    if options.get("url"):
        url = options["url"].strip()
        if not url.startswith("https://"):
            raise BadInput(f"--url: {url[:200]!r} must be an https URL")
        out["url"] = check_url(url, "--url", allow_private=settings.allow_private_targets, must_resolve=check)
    else:
        out["url"] = aws_gateway_url(out["gateway_id"], out["region"], out["stage"])
        check_url(out["url"], "--gateway-id/--region", allow_private=settings.allow_private_targets,
                  must_resolve=check)
    return Checked(out)


def _azure(options: dict[str, str], _secret: Secret | None, settings: Settings, check: bool) -> Checked:
    url = _need(options, "interop_url")
    if not url.startswith("https://"):
        raise BadInput(f"--interop-url: {url!r} must be an https URL")
    check_url(url, "--interop-url", allow_private=settings.allow_private_targets, must_resolve=check)
    subscription = _need(options, "subscription_id")
    try:
        subscription = str(uuid.UUID(subscription))
    except ValueError:
        raise BadInput(f"--subscription-id: {subscription!r} is not a UUID") from None
    return Checked({"url": url, "subscription_id": subscription, "audience": subscription})


def _other(options: dict[str, str], secret: Secret | None, settings: Settings, check: bool) -> Checked:
    label = _need(options, "type")
    if label.lower() not in OTHER_TYPES:
        raise BadInput(f"--type: {label!r} is not one of AWS, Azure, private cloud")
    credentials = _need_secret(secret, "credentials")
    if ":" not in credentials or not credentials.split(":", 1)[0]:
        raise BadInput("--credentials: expected username:password")
    url = check_url(_need(options, "url"), "--url", allow_private=settings.allow_private_targets,
                    allow_http_loopback=True, must_resolve=check)
    return Checked({"type": OTHER_TYPES[label.lower()], "url": url, "username": credentials.split(":", 1)[0]},
                   credentials)


def _aws_iot(options: dict[str, str], _secret: Secret | None, settings: Settings, check: bool) -> Checked:
    out = {"region": _match(_need(options, "region"), REGION, "region", "an AWS region such as eu-central-1"),
           "policy": _match(_need(options, "policy"), re.compile(r"[\w+=,.@-]{1,128}"), "policy", "an IoT policy name"),
           "thing_prefix": _match(options.get("thing_prefix") or "", re.compile(r"[A-Za-z0-9:_-]{0,64}"),
                                  "thing_prefix", "a thing-name prefix (letters, digits, : _ -)")}
    for field, pattern, what in (
        ("thing_type", re.compile(r"[A-Za-z0-9:_-]{1,128}"), "a thing type name"),
        ("thing_group", re.compile(r"[A-Za-z0-9:_-]{1,128}"), "a thing group name"),
        ("role_arn", re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}"), "an IAM role ARN"),
    ):
        if options.get(field):
            out[field] = _match(options[field].strip(), pattern, field, what)
    if options.get("endpoint_url"):
        out["endpoint_url"] = check_url(options["endpoint_url"].strip(), "--endpoint-url", allow_private=True,
                                        allow_http_loopback=True, must_resolve=False)
    return Checked(out)


def parse_connection_string(text: str) -> dict[str, str]:
    parts = dict(part.split("=", 1) for part in text.split(";") if "=" in part)
    missing = [k for k in ("HostName", "SharedAccessKeyName", "SharedAccessKey") if not parts.get(k)]
    if missing:
        raise BadInput(f"--connection-string: missing {', '.join(missing)} (expected an IoT Hub service "
                       "connection string)")
    return parts


def _azure_hub(_options: dict[str, str], given: Secret | None, settings: Settings, check: bool) -> Checked:
    secret = _need_secret(given, "connection_string")
    parts = parse_connection_string(secret)
    return Checked({"host_name": parts["HostName"], "policy_name": parts["SharedAccessKeyName"]}, secret)


VALIDATORS: dict[str, Callable[[dict[str, str], Secret | None, Settings, bool], Checked]] = {
    "aws": _aws, "azure": _azure, "other": _other, "aws-iot": _aws_iot, "azure-iot-hub": _azure_hub,
}
FIELDS = {
    "aws": {"account_id", "gateway_id", "region", "stage", "url"},
    "azure": {"interop_url", "subscription_id"},
    "other": {"type", "url"},
    "aws-iot": {"region", "policy", "thing_prefix", "thing_type", "thing_group", "role_arn", "endpoint_url"},
    "azure-iot-hub": set(),
}


def pick_secret(kind: str, given: dict[str, str | None]) -> str | None:
    """The raw value of the kind's one secret option among ``given`` (by field name); another kind's
    secret option is refused like any option that does not apply."""
    for field_name, value in given.items():
        if value not in (None, "") and SECRET_OPTIONS.get(kind) != field_name:
            raise BadInput(f"--{field_name.replace('_', '-')} does not apply to kind {kind}")
    value = given.get(SECRET_OPTIONS.get(kind, ""))
    return value if value not in (None, "") else None


def validate(kind: str, options: dict[str, str | None], settings: Settings, check: bool = True,
             secret: Secret | None = None) -> Checked:
    """Check a kind's options; its one secret (SECRET_OPTIONS) comes apart, as a literal Secret."""
    if kind not in VALIDATORS:
        raise BadInput(f"--kind: {kind!r} is not one of {', '.join(KINDS)}")
    given = {k: v for k, v in options.items() if v is not None}
    stray = sorted(set(given) - FIELDS[kind] - set(COMMON_OPTIONS))
    if secret is not None and kind not in SECRET_OPTIONS:
        raise BadInput(f"kind {kind} takes no secret")
    if stray:
        raise BadInput(f"--{stray[0].replace('_', '-')} does not apply to kind {kind}")
    common = {name: given.pop(name) for name in COMMON_OPTIONS if name in given}
    checked = VALIDATORS[kind]({k: str(v) for k, v in given.items()}, secret, settings, check)
    for name, value in common.items():
        checked.settings[name] = _common_option(name, str(value))
    return checked


COMMON_LIMITS = {"quota": (0.0, 100_000.0, "a positive rate per second"),
                 "pace": (0.0, 1.0, "a fraction of the quota above 0 and at most 1 (default 0.97)"),
                 "chunk_size": (1, 1000, "a whole number of devices from 1 to 1000"),
                 "timeout": (1, 600, "seconds from 1 to 600")}


def _common_option(name: str, value: str) -> str:
    low, high, what = COMMON_LIMITS[name]
    try:
        number = int(value) if name == "chunk_size" else float(value)
    except ValueError:
        number = None
    if number is None or not (low < number <= high if name in ("quota", "pace") else low <= number <= high):
        raise BadInput(f"--{name.replace('_', '-')}: {value[:40]!r} is not {what}")
    return str(number)


def add_cloud_api(*, session: Session, settings: Settings, actor: Actor, name: str, kind: str,
                  options: dict[str, str | None], secret: Secret | None = None,
                  check: Callable[[CloudApi], None] | None = None) -> CloudApi:
    require(actor, Action.CONFIGURE_CLOUD_API)
    if not NAME.fullmatch(name or ""):
        shown = name if len(name or "") <= 80 else name[:77] + "..."
        raise BadInput(f"invalid Product Cloud API name {shown!r}: 1 to 64 letters, digits, space . _ -")
    checked = validate(kind, options, settings, check=check is not None, secret=secret)
    if _find(session, actor, name) is not None:
        raise AlreadyExists(f"Product Cloud API {name} already exists in account {actor.account_name}")
    api = CloudApi(account_id=actor.account_id, name=name, kind=kind, created_by=actor.email,
                   settings_json=json.dumps(checked.settings, sort_keys=True),
                   secret_token=encrypt(settings, checked.secret) if checked.secret is not None else None)
    if check is not None:
        check(api)
    session.add(api)
    audit.record(session=session, actor=actor.email, action="cloud_api.add", subject=name, kind=kind,
                 account=actor.account_name)
    return api


def _find(session: Session, actor: Actor, name: str) -> CloudApi | None:
    return session.exec(select(CloudApi).where(CloudApi.account_id == actor.account_id,
                                                CloudApi.name == name)).first()


def get_cloud_api(*, session: Session, actor: Actor, name: str,
                  action: Action = Action.CONFIGURE_CLOUD_API) -> CloudApi:
    require(actor, action)
    api = _find(session, actor, name)
    if api is None:
        raise NotFound(f"unknown Product Cloud API {name}")
    return api


def list_cloud_apis(*, session: Session, actor: Actor) -> list[CloudApi]:
    require(actor, Action.CONFIGURE_CLOUD_API)
    return list(session.exec(select(CloudApi).where(CloudApi.account_id == actor.account_id)
                             .order_by(CloudApi.name)).all())


def remove_cloud_api(*, session: Session, actor: Actor, name: str) -> None:
    api = get_cloud_api(session=session, actor=actor, name=name)
    session.delete(api)
    audit.record(session=session, actor=actor.email, action="cloud_api.remove", subject=name,
                 account=actor.account_name)


def update_cloud_api(*, session: Session, settings: Settings, actor: Actor, name: str,
                     options: dict[str, str | None], secret: Secret | None = None,
                     check: Callable[[CloudApi], None] | None = None) -> CloudApi:
    """Change some options of a Product Cloud API (URL, credentials, quota, chunk size, timeout), validated
    as `add` validates them; its records, and so what it already holds, are kept."""
    require(actor, Action.CONFIGURE_CLOUD_API)
    api = get_cloud_api(session=session, actor=actor, name=name)
    stored = settings_of(api)
    given = {k: v for k, v in options.items() if v not in (None, "")}
    merged: dict[str, str | None] = {k: stored[k] for k in (*FIELDS[api.kind], *COMMON_OPTIONS) if k in stored}
    if api.kind == "aws" and "url" in merged and merged["url"] == aws_gateway_url(
            stored.get("gateway_id", ""), stored.get("region", ""), stored.get("stage", "")):
        del merged["url"]  # derived, not given: it follows the gateway, region and stage
    merged.update(given)
    kept = Secret(secret_of(settings, api) or "") if api.secret_token else None
    checked = validate(api.kind, merged, settings, check=check is not None, secret=secret or kept)
    api.settings_json = json.dumps(checked.settings, sort_keys=True)
    if secret is not None:
        api.secret_token = encrypt(settings, secret.value)
    if check is not None:
        check(api)
    session.add(api)
    audit.record(session=session, actor=actor.email, action="cloud_api.update", subject=name,
                 fields=sorted([*given, *(["secret"] if secret is not None else [])]))
    return api


def change_url(*, session: Session, settings: Settings, actor: Actor, name: str, url: str) -> CloudApi:
    """Point an interop Product Cloud API at a new URL (the demo's receiver changes port from run to run)."""
    return update_cloud_api(session=session, settings=settings, actor=actor, name=name, options={"url": url})


def settings_of(api: CloudApi) -> dict[str, str]:
    return dict(json.loads(api.settings_json))


def secret_of(settings: Settings, api: CloudApi) -> str | None:
    return decrypt(settings, api.secret_token) if api.secret_token else None


def public_view(api: CloudApi) -> dict[str, Any]:
    """Everything about the API an admin may see; the secret only as a placeholder."""
    view: dict[str, Any] = {"name": api.name, "kind": api.kind, **settings_of(api)}
    if api.kind in SECRET_OPTIONS:
        view[SECRET_OPTIONS[api.kind]] = REDACTED
    view.update(created_at=api.created_at.isoformat(), created_by=api.created_by)
    return view
