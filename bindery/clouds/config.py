"""Configuring an account's Product Cloud APIs: per-kind validation, secrets encrypted, show redacted."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from bindery import audit
from bindery.access import Action, Actor, require
from bindery.clouds.kinds import spec_of
from bindery.clouds.spec import COMMON_OPTIONS, Checked
from bindery.errors import AlreadyExists, BadInput, BinderyError, FieldError, NotFound
from bindery.models.clouds import CloudApi
from bindery.secrets import REDACTED, Secret, decrypt, encrypt
from bindery.settings import Settings

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")


def check_name(name: str) -> None:
    if not NAME.fullmatch(name or ""):
        shown = name if len(name or "") <= 80 else name[:77] + "..."
        raise FieldError("name", f"invalid Product Cloud API name {shown!r}: 1 to 64 letters, digits, space . _ -",
                         named=False)


def pick_secret(kind: str, given: dict[str, str | None]) -> str | None:
    """The raw value of the kind's one secret option among ``given`` (by field name); another kind's
    secret option is refused like any option that does not apply."""
    spec = spec_of(kind)
    for field_name, value in given.items():
        if value not in (None, "") and spec.secret != field_name:
            raise FieldError(field_name, f"does not apply to kind {kind}", joined=False)
    value = given.get(spec.secret or "")
    return value if value not in (None, "") else None


def validate(kind: str, options: dict[str, str | None], settings: Settings, check: bool = True,
             secret: Secret | None = None) -> Checked:
    """Check a kind's options with its spec; its one secret comes apart, as a literal Secret."""
    spec = spec_of(kind)
    given = {k: v for k, v in options.items() if v is not None}
    stray = sorted(set(given) - set(spec.own_options) - set(COMMON_OPTIONS))
    if secret is not None and spec.secret is None:
        raise BadInput(f"kind {kind} takes no secret")
    if stray:
        raise FieldError(stray[0], f"does not apply to kind {kind}", joined=False)
    common = {name: given.pop(name) for name in COMMON_OPTIONS if name in given}
    checked = spec.validate({k: str(v) for k, v in given.items() if k != spec.secret}, secret, settings, check)
    for name, value in common.items():
        checked.settings[name] = common_option(name, str(value))
    return checked


COMMON_LIMITS = {"quota": (0.0, 100_000.0, "a positive rate per second"),
                 "pace": (0.0, 1.0, "a fraction of the quota above 0 and at most 1 (default 0.97)"),
                 "chunk_size": (1, 1000, "a whole number of devices from 1 to 1000"),
                 "timeout": (1, 600, "seconds from 1 to 600")}


def common_option(name: str, value: str) -> str:
    low, high, what = COMMON_LIMITS[name]
    try:
        number = int(value) if name == "chunk_size" else float(value)
    except ValueError:
        number = None
    if number is None or not (low < number <= high if name in ("quota", "pace") else low <= number <= high):
        raise FieldError(name, f"{value[:40]!r} is not {what}")
    return str(number)


def add_cloud_api(*, session: Session, settings: Settings, actor: Actor, name: str, kind: str,
                  options: dict[str, str | None], secret: Secret | None = None,
                  check: Callable[[CloudApi], None] | None = None) -> CloudApi:
    require(actor, Action.CONFIGURE_CLOUD_API)
    check_name(name)
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


class InUse(BinderyError):
    """A Product Cloud API that batches, device records, a default or a run still use: not removed."""


@dataclass
class Usage:
    """What still uses a Product Cloud API, and what would go with it."""

    targets: list[str] = field(default_factory=list)  # BIDs of the batches whose target it is
    provisioned: dict[str, int] = field(default_factory=dict)  # BID -> devices it holds, as provisioned
    default: bool = False  # the account's default for automatic provisioning
    running: list[str] = field(default_factory=list)  # BIDs of the runs on it now (a live lease)
    records: int = 0  # its other records (removed, failed, never provisioned): they go with it

    @property
    def in_use(self) -> bool:
        return bool(self.targets or self.provisioned or self.default or self.running)

    def reason(self, name: str) -> str:
        """One line: what uses the API, each with how to free it."""
        parts = []
        if self.targets:
            parts.append(f"batch{'es' if len(self.targets) > 1 else ''} {_few(self.targets)} target it "
                         "(change their target)")
        if self.provisioned:
            count = sum(self.provisioned.values())
            parts.append(f"it holds {count} provisioned device record{'s' if count != 1 else ''} of "
                         f"{_few(list(self.provisioned))} (deprovision them from {name} first)")
        if self.default:
            parts.append("it is the default for automatic provisioning (turn that off or choose another)")
        if self.running:
            parts.append(f"a run on {_few(self.running)} is using it (wait for it to end)")
        return f"{name} is still in use: " + "; ".join(parts)


def _few(bids: list[str]) -> str:
    return ", ".join(bids[:5]) + (f" and {len(bids) - 5} more" if len(bids) > 5 else "")


def usage(*, session: Session, api: CloudApi) -> Usage:
    from sqlalchemy import func

    from bindery.models.accounts import Binding
    from bindery.models.catalog import Batch
    from bindery.models.provisioning import AccountSettings, ProvisioningRecord, RunLease
    from bindery.models.types import utcnow
    from bindery.provisioning.records import PROVISIONED

    found = Usage()
    found.targets = list(session.exec(select(Batch.bid).join(Binding, col(Binding.batch_id) == col(Batch.id))
                                      .where(Binding.target_cloud_api_id == api.id).order_by(Batch.bid)).all())
    rows = session.exec(select(Batch.bid, ProvisioningRecord.status, func.count())
                        .join(Batch, col(Batch.id) == col(ProvisioningRecord.batch_id))
                        .where(ProvisioningRecord.cloud_api_id == api.id)
                        .group_by(Batch.bid, ProvisioningRecord.status).order_by(Batch.bid)).all()
    for bid, status, count in rows:
        if status == PROVISIONED:
            found.provisioned[bid] = int(count)
        else:
            found.records += int(count)
    found.default = session.exec(select(AccountSettings).where(
        AccountSettings.default_cloud_api_id == api.id)).first() is not None
    found.running = list(session.exec(select(Batch.bid).join(RunLease, col(RunLease.batch_id) == col(Batch.id))
                                      .where(RunLease.cloud_api_id == api.id,
                                             col(RunLease.expires_at) > utcnow())).all())
    return found


def remove_cloud_api(*, session: Session, actor: Actor, name: str) -> None:
    """Remove an API nothing uses (InUse says what does); its records of devices it does not hold, its pace
    and its finished leases go with it. The run history keeps its name."""
    from sqlmodel import delete

    from bindery.models.provisioning import ProvisioningRecord, QuotaPace, RunLease, ShardLease

    api = get_cloud_api(session=session, actor=actor, name=name)
    found = usage(session=session, api=api)
    if found.in_use:
        raise InUse(found.reason(name))
    for table in (ProvisioningRecord, QuotaPace, RunLease, ShardLease):
        session.execute(delete(table).where(col(table.cloud_api_id) == api.id))
    session.delete(api)
    audit.record(session=session, actor=actor.email, action="cloud_api.remove", subject=name,
                 account=actor.account_name)


def update_cloud_api(*, session: Session, settings: Settings, actor: Actor, name: str,
                     options: dict[str, str | None], secret: Secret | None = None,
                     check: Callable[[CloudApi], None] | None = None,
                     keep_secret_on_move: bool = True) -> CloudApi:
    """Change some options of a Product Cloud API (URL, credentials, quota, chunk size, timeout), validated
    as `add` validates them; its records, and so what it already holds, are kept. Remote callers (the web)
    pass ``keep_secret_on_move=False``: a stolen session or token must not send the stored secret to an
    address of its choosing, so a new destination needs the secret given again."""
    require(actor, Action.CONFIGURE_CLOUD_API)
    api = get_cloud_api(session=session, actor=actor, name=name)
    stored = settings_of(api)
    given = {k: v for k, v in options.items() if v not in (None, "")}
    spec = spec_of(api.kind)
    derived = spec.derived(stored)  # made from other options, not given: made again from them
    merged: dict[str, str | None] = {k: stored[k] for k in (*spec.own_options, *COMMON_OPTIONS)
                                     if k in stored and k not in derived and k != spec.secret}
    moved = [k for k in spec.destination if k in given and given[k] != stored.get(k)]
    if moved and secret is None and api.secret_token and not keep_secret_on_move and spec.secret:
        raise FieldError(spec.secret, f"is needed again: {spec.label(moved[0])} changes where it is sent",
                         joined=False)
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
    secret = spec_of(api.kind).secret
    if secret is not None:
        view[secret] = REDACTED
    view.update(created_at=api.created_at.isoformat(), created_by=api.created_by)
    return view
