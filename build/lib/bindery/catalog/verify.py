"""Verifying raw reel entries: signatures, chains, validity, identity. Pure: no database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509

from bindery.catalog.trust import Anchors
from bindery.crypto.certs import (
    CertificateError,
    CertificateFacts,
    common_name,
    facts,
    load_b64_der,
    load_certificate,
)
from bindery.crypto.jws import verify_entry as verify_jws
from bindery.errors import one_line
from bindery.reels.base import RawEntry, device_id_problem


@dataclass(frozen=True)
class Verified:
    ref: str
    device_id: str
    facts: CertificateFacts


@dataclass(frozen=True)
class Rejected:
    ref: str
    device_id: str | None
    reason: str

    def describe(self, source: str) -> str:
        who = f" (device {self.device_id})" if self.device_id else ""
        return f"{source}: {self.ref}{who}: {self.reason}"


def _from_manifest(entry: RawEntry, anchors: Anchors) -> tuple[x509.Certificate, list[x509.Certificate]]:
    assert entry.jws is not None
    payload = verify_jws(entry.jws, anchors.signers)
    unique_id = payload.get("uniqueId")
    if entry.device_id is not None and unique_id != entry.device_id:
        raise CertificateError(f"header uniqueId {entry.device_id} differs from the signed uniqueId {unique_id}")
    if unique_id is None:
        raise CertificateError("signed payload has no uniqueId")
    entry.device_id = str(unique_id)
    keys: Any = (payload.get("publicKeySet") or {}).get("keys") or []
    x5c = keys[0].get("x5c") if keys and isinstance(keys[0], dict) else None
    if not x5c or not isinstance(x5c, list):
        raise CertificateError("entry has no certificate (publicKeySet.keys[0].x5c is missing)")
    return load_b64_der(x5c[0]), [load_b64_der(c) for c in x5c[1:]]


def verify_entry(entry: RawEntry, anchors: Anchors, at: datetime, bid: str) -> Verified | Rejected:
    if entry.problem:
        return Rejected(entry.ref, entry.device_id, entry.problem)
    if entry.group_id is not None and entry.group_id != bid:
        return Rejected(entry.ref, entry.device_id, f"group {entry.group_id!r} is not the reel's BID {bid!r}")
    try:
        if entry.jws is not None:
            cert, chain = _from_manifest(entry, anchors)
        else:
            if entry.cert is None:
                raise CertificateError("entry has no certificate")
            cert = load_certificate(entry.cert)
            chain = [load_certificate(c) for c in entry.chain]
        anchors.store.verify(cert, chain, at)
        device_id = entry.device_id or common_name(cert.subject)
        problem = device_id_problem(device_id)
        if problem:
            raise CertificateError(problem)
        assert device_id is not None
        return Verified(entry.ref, device_id, facts(cert))
    except CertificateError as exc:
        return Rejected(entry.ref, entry.device_id, str(exc))
    except Exception as exc:  # the entry's error boundary: a malformed entry never ends the import
        return Rejected(entry.ref, entry.device_id, f"unreadable entry ({exc.__class__.__name__}: {one_line(exc)})")
