"""`bindery doctor`: what an installation needs, checked one line at a time, each problem with its fix."""

from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.fernet import Fernet
from sqlmodel import Session, col, func, select

from bindery import db as database
from bindery.errors import BinderyError, one_line
from bindery.models.catalog import TrustAnchor
from bindery.models.clouds import SigningKey
from bindery.settings import Settings


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    said: str
    fix: str = ""
    warning: bool = False  # works, but likely not as meant (exit code stays 0)

    def line(self) -> str:
        fix = f" — fix: {self.fix}" if self.fix and (self.warning or not self.ok) else ""
        state = "problem" if not self.ok else "warning" if self.warning else "ok"
        return f"{state:8} {self.check}: {self.said}{fix}"


def _database(settings: Settings) -> Finding:
    where = database.redact_url(settings.resolved_database_url)
    try:
        with database.outage_boundary(settings.resolved_database_url):
            current = database.current_revision(database.get_engine(settings))
    except BinderyError as exc:
        return Finding("database", False, str(exc), "start the database, or set BINDERY_DATABASE_URL")
    except Exception as exc:  # a bad URL, a missing driver
        return Finding("database", False, f"{where}: {exc.__class__.__name__}: {one_line(exc)}",
                       "check BINDERY_DATABASE_URL")
    head = database.head_revision()
    if current != head:
        return Finding("database", False, f"{where} is at revision {current or 'none'}, the code needs {head}",
                       "bindery db upgrade")
    return Finding("database", True, f"{where} at revision {current}")


def _secret_key(settings: Settings) -> Finding:
    if settings.secret_key:
        try:
            Fernet(settings.secret_key.encode())
        except ValueError:
            return Finding("secret key", False, "BINDERY_SECRET_KEY is not a Fernet key",
                           "set it to the output of `python -c 'from cryptography.fernet import Fernet; "
                           "print(Fernet.generate_key().decode())'`")
        return Finding("secret key", True, "BINDERY_SECRET_KEY is set")
    path = settings.secret_key_file
    if not path.exists():
        return Finding("secret key", True, f"none yet: one is generated into {path} on first use (set "
                       "BINDERY_SECRET_KEY in production)")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return Finding("secret key", False, f"{path} is readable by others (mode {mode:o})", f"chmod 600 {path}")
    return Finding("secret key", True, f"{path} (mode {mode:o})")


def _count(settings: Settings, model: type[TrustAnchor] | type[SigningKey]) -> int:
    with Session(database.get_engine(settings)) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def _trust_anchors(settings: Settings) -> Finding:
    count = _count(settings, TrustAnchor)
    if count == 0:
        return Finding("trust anchors", False, "none stored: no reel can be verified",
                       "bindery trust add --vendor all (or your vendor's CA files)")
    if not _vendor_anchor_stored(settings):
        return Finding("trust anchors", True, f"{count} stored, none of them a chip vendor's: only reels of your "
                       "own CAs verify", "bindery trust add --vendor all", warning=True)
    return Finding("trust anchors", True, f"{count} stored")


def _vendor_anchor_stored(settings: Settings) -> bool:
    """Whether any of the public vendor anchors Bindery ships (Infineon, Microchip, STM) is trusted."""
    from bindery import anchors
    from bindery.crypto.certs import fingerprint, load_certificates

    shipped = {fingerprint(cert) for path in anchors.vendor_files("all")
               for cert in load_certificates(path.read_bytes())}
    with Session(database.get_engine(settings)) as session:
        return session.exec(select(func.count()).select_from(TrustAnchor).where(
            col(TrustAnchor.fingerprint_sha256).in_(shipped))).one() > 0


def cloud_api_findings(settings: Settings) -> list[Finding]:
    """Each Product Cloud API's target contacted with its kind's harmless authorized call (nothing changes)."""
    from bindery.clouds.base import ConnectorError
    from bindery.clouds.connectors import connector_for
    from bindery.models.accounts import Account
    from bindery.models.clouds import CloudApi

    findings = []
    with Session(database.get_engine(settings)) as session:
        apis = session.exec(select(CloudApi, Account.name).join(Account, col(Account.id) == col(CloudApi.account_id))
                            .order_by(col(Account.name), col(CloudApi.name))).all()
        for api, account in apis:
            name = f"cloud API {account}/{api.name}"
            try:
                connector = connector_for(session=session, settings=settings, api=api)
            except BinderyError as exc:
                findings.append(Finding(name, False, one_line(exc), f"bindery cloud-api update {api.name}"))
                continue
            try:
                connector.check()
            except ConnectorError as exc:
                findings.append(Finding(name, False, f"{api.kind}: {one_line(exc)}",
                                        f"check the target, or its settings: bindery cloud-api update {api.name}"))
            else:
                findings.append(Finding(name, True, f"{api.kind}: target answered"))
            finally:
                connector.close()
    if not findings:
        findings.append(Finding("cloud APIs", True, "none configured"))
    return findings


def _signing_key(settings: Settings) -> Finding:
    count = _count(settings, SigningKey)
    return Finding("signing key", True, "ES256 key present" if count else
                   "none yet: made on first use by an aws or azure Product Cloud API")


def _prefect(settings: Settings) -> Finding:
    url = settings.prefect_api_url
    if not url:
        return Finding("Prefect API", True, "PREFECT_API_URL not set: flows run on a temporary local server")
    import httpx

    auth = settings.prefect_api_auth_string
    try:
        answer = httpx.get(f"{url.rstrip('/')}/health", timeout=min(10.0, settings.http_timeout),
                           auth=tuple(auth.split(":", 1)) if auth else None)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        return Finding("Prefect API", False, f"{url} unreachable ({exc.__class__.__name__})",
                       "start it (make server) or fix PREFECT_API_URL")
    if answer.status_code == 401:
        return Finding("Prefect API", False, f"{url} refuses us (401)", "set PREFECT_API_AUTH_STRING")
    if answer.status_code != 200:
        return Finding("Prefect API", False, f"{url} answered {answer.status_code}", "check the server's log")
    return Finding("Prefect API", True, f"{url} healthy")


def examine(settings: Settings) -> list[Finding]:
    """Every check; those that need the database are skipped when it is not usable."""
    first = _database(settings)
    checks: list[Callable[[Settings], Finding]] = [_secret_key, _prefect]
    if first.ok:
        checks[1:1] = [_trust_anchors, _signing_key]
    return [first, *(check(settings) for check in checks)]
