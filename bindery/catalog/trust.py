"""Trust anchors: vendor roots, intermediates and Microchip manifest signers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from sqlmodel import Session, select

from bindery import audit
from bindery.crypto.certs import (
    CertificateError,
    basic_constraints,
    check_signature_hash,
    common_name,
    der_of,
    fingerprint,
    is_self_signed,
    key_type,
    load_certificates,
    subject_key_id,
)
from bindery.crypto.chain import TrustStore
from bindery.crypto.jws import Signer, signers_from
from bindery.errors import BadInput
from bindery.models.catalog import TrustAnchor

ROOT, INTERMEDIATE, SIGNER = "root", "intermediate", "manifest_signer"


DEVICE_HINT = "a device certificate, not a CA or manifest signer: import it with `bindery reel import`"


def classify(cert: x509.Certificate, source: str) -> str:
    """Roots are self-signed CAs, intermediates CAs issued by another, signers self-signed non-CAs.
    Anchors are held to the strict parser; a device certificate is named as one."""
    try:
        key_type(cert)
        check_signature_hash(cert)
        constraints = basic_constraints(cert)
        key_id = subject_key_id(cert)
    except CertificateError as exc:
        if _is_device(cert):
            raise BadInput(f"{source}: {DEVICE_HINT}") from None
        raise BadInput(f"{source}: {exc}") from None
    self_signed = is_self_signed(cert)
    if constraints is not None and constraints.ca:
        if cert.issuer == cert.subject and not self_signed:
            raise BadInput(f"{source}: self-issued CA whose self-signature does not verify")
        return ROOT if self_signed else INTERMEDIATE
    if self_signed and key_id:
        return SIGNER
    if cert.issuer != cert.subject:
        raise BadInput(f"{source}: {DEVICE_HINT}")
    raise BadInput(f"{source}: neither a CA (basicConstraints CA=true) nor a self-signed manifest signer")


def _is_device(cert: x509.Certificate) -> bool:
    try:
        constraints = basic_constraints(cert, tolerant=True)
    except CertificateError:
        return False
    return cert.issuer != cert.subject and not (constraints is not None and constraints.ca)


@dataclass(frozen=True)
class Added:
    source: str
    kind: str
    subject: str
    fingerprint_sha256: str
    new: bool


def read_trust_files(paths: list[Path]) -> list[tuple[str, x509.Certificate]]:
    """Every certificate in the given files, checked before anything is stored."""
    found: list[tuple[str, x509.Certificate]] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise BadInput(f"{path}: cannot read file ({exc.__class__.__name__})") from None
        try:
            certs = load_certificates(data)
        except CertificateError as exc:
            raise BadInput(f"{path.name}: {exc}") from None
        found += [(path.name, cert) for cert in certs]
    return found


def add_anchors(*, session: Session, paths: list[Path], actor: str) -> list[Added]:
    certs = read_trust_files(paths)
    known = set(session.exec(select(TrustAnchor.fingerprint_sha256)).all())
    result: list[Added] = []
    for source, cert in certs:
        kind = classify(cert, source)
        fp = fingerprint(cert)
        subject = cert.subject.rfc4514_string()
        if fp in known:
            result.append(Added(source, kind, subject, fp, new=False))
            continue
        known.add(fp)
        session.add(TrustAnchor(
            kind=kind, subject=subject, issuer=cert.issuer.rfc4514_string(), fingerprint_sha256=fp,
            key_id=subject_key_id(cert), not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc, der=der_of(cert),
        ))
        audit.record(session=session, actor=actor, action="trust.add", subject=subject,
                     kind=kind, fingerprint=fp, source=source)
        result.append(Added(source, kind, subject, fp, new=True))
    return result


def anchor_name(anchor: TrustAnchor) -> str:
    """The anchor's common name, for narrow tables."""
    return common_name(x509.load_der_x509_certificate(anchor.der).subject) or anchor.subject


def list_anchors(*, session: Session) -> list[TrustAnchor]:
    return list(session.exec(select(TrustAnchor).order_by(TrustAnchor.kind, TrustAnchor.subject)).all())


@dataclass(frozen=True)
class Anchors:
    store: TrustStore
    signers: dict[str, list[Signer]]


def load_anchors(*, session: Session) -> Anchors:
    return anchors_from(anchor_ders(session=session))


def anchor_ders(*, session: Session) -> list[tuple[str, bytes]]:
    """(kind, DER) of every anchor: what a verifying worker process needs to build the same Anchors."""
    return [(anchor.kind, anchor.der) for anchor in list_anchors(session=session)]


def anchors_from(ders: list[tuple[str, bytes]]) -> Anchors:
    by_kind: dict[str, list[x509.Certificate]] = {ROOT: [], INTERMEDIATE: [], SIGNER: []}
    for kind, der in ders:
        by_kind[kind].append(x509.load_der_x509_certificate(der))
    return Anchors(TrustStore(roots=by_kind[ROOT], intermediates=by_kind[INTERMEDIATE]),
                   signers_from(by_kind[SIGNER]))
