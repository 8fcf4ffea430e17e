"""Chain verification for device identities: exactly the checks of docs/reels.md, "What verification
checks" (written there once). Device certificates from secure-element factories lack extensions web-PKI
validators insist on, so Bindery walks the chain itself, up to a stored root, with at most
``MAX_INTERMEDIATES`` intermediates."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from bindery.crypto.certs import (
    CertificateError,
    basic_constraints,
    check_signature_hash,
    common_name,
    fingerprint,
    key_type,
    key_usage,
)

MAX_INTERMEDIATES = 4


def _label(name: x509.Name) -> str:
    return common_name(name) or name.rfc4514_string() or "<empty name>"


def check_validity(cert: x509.Certificate, at: datetime, what: str) -> None:
    if at < cert.not_valid_before_utc:
        raise CertificateError(f"{what} is not yet valid (notBefore {cert.not_valid_before_utc:%Y-%m-%d})")
    if at > cert.not_valid_after_utc:
        raise CertificateError(f"{what} has expired (notAfter {cert.not_valid_after_utc:%Y-%m-%d})")


def check_issuer_role(issuer: x509.Certificate, cas_below: int) -> None:
    constraints = basic_constraints(issuer)
    label = _label(issuer.subject)
    if constraints is None or not constraints.ca:
        raise CertificateError(f"issuer '{label}' is not a CA (basicConstraints CA=true missing)")
    if constraints.path_length is not None and cas_below > constraints.path_length:
        raise CertificateError(f"issuer '{label}' pathLen {constraints.path_length} forbids this chain")
    usage = key_usage(issuer)
    if usage is not None and not usage.key_cert_sign:
        raise CertificateError(f"issuer '{label}' keyUsage lacks keyCertSign")


def signed_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


@dataclass
class TrustStore:
    """Roots and intermediates Bindery trusts, indexed by subject name, with a cache of
    intermediates already proven to chain to a root (so a reel costs one signature per device)."""

    roots: list[x509.Certificate] = field(default_factory=list)
    intermediates: list[x509.Certificate] = field(default_factory=list)
    _by_subject: dict[x509.Name, list[x509.Certificate]] = field(default_factory=dict, init=False)
    _root_fps: set[str] = field(default_factory=set, init=False)
    _proven: set[str] = field(default_factory=set, init=False)
    _fingerprints: dict[int, str] = field(default_factory=dict, init=False)
    _issuer_checks: dict[tuple[str, int], str | None] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        for cert in [*self.roots, *self.intermediates]:
            self._by_subject.setdefault(cert.subject, []).append(cert)
            self._fingerprints[id(cert)] = fingerprint(cert)
        self._root_fps = {self._fingerprint(c) for c in self.roots}

    def _fingerprint(self, cert: x509.Certificate) -> str:
        known = self._fingerprints.get(id(cert))
        return known if known is not None else fingerprint(cert)

    def _issuer_problem(self, issuer: x509.Certificate, issuer_fp: str, cas_below: int, at: datetime) -> str | None:
        """Rules 6-7 for one issuer; the answer is the same for every device of a reel, so it is cached."""
        key = (issuer_fp, cas_below)
        if key in self._issuer_checks:
            return self._issuer_checks[key]
        try:
            check_issuer_role(issuer, cas_below)
            key_type(issuer)
            check_signature_hash(issuer)
            check_validity(issuer, at, f"issuer '{_label(issuer.subject)}'")
            problem = None
        except CertificateError as exc:
            problem = str(exc)
        self._issuer_checks[key] = problem
        return problem

    def _candidates(self, name: x509.Name, carried: Sequence[x509.Certificate]) -> list[x509.Certificate]:
        found = [c for c in carried if c.subject == name]
        found += self._by_subject.get(name, [])
        return found

    def verify(self, device: x509.Certificate, carried: Sequence[x509.Certificate], at: datetime) -> None:
        """Raise CertificateError with the reason, or return when the device chains to a root.

        One store serves one import (one clock): issuer checks and proven intermediates are cached."""
        key_type(device)
        check_signature_hash(device)
        constraints = basic_constraints(device, tolerant=True)
        if constraints is not None and constraints.ca:
            raise CertificateError("device certificate is a CA (basicConstraints CA=true)")
        check_validity(device, at, "device certificate")
        self._walk(device, carried, at, cas_below=0)

    def _walk(self, child: x509.Certificate, carried: Sequence[x509.Certificate], at: datetime,
              cas_below: int) -> None:
        candidates = self._candidates(child.issuer, carried)
        if not candidates:
            raise CertificateError(f"untrusted chain: issuer '{_label(child.issuer)}' is not a trusted CA")
        reasons: list[str] = []
        for issuer in candidates:
            issuer_fp = self._fingerprint(issuer)
            problem = self._issuer_problem(issuer, issuer_fp, cas_below, at)
            if problem:
                reasons.append(problem)
                continue
            if not signed_by(child, issuer):
                reasons.append(
                    f"signature does not verify with the key of issuer '{_label(issuer.subject)}'"
                )
                continue
            if issuer_fp in self._root_fps or issuer_fp in self._proven:
                return
            if cas_below >= MAX_INTERMEDIATES:
                reasons.append("chain is longer than allowed")
                continue
            try:
                self._walk(issuer, carried, at, cas_below + 1)
            except CertificateError as exc:
                reasons.append(str(exc))
                continue
            with self._lock:
                self._proven.add(issuer_fp)
            return
        raise CertificateError(reasons[0] if len(reasons) == 1 else "; ".join(dict.fromkeys(reasons)))


def trust_store(roots: Iterable[x509.Certificate], intermediates: Iterable[x509.Certificate]) -> TrustStore:
    return TrustStore(roots=list(roots), intermediates=list(intermediates))
