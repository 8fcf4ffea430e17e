"""Parsing and describing X.509 certificates, and the algorithm policy Bindery accepts."""

from __future__ import annotations

import base64
import hashlib
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from asn1crypto import parser as asn1_parser
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from bindery.crypto import lenient

PEM_MARKER = b"-----BEGIN CERTIFICATE-----"
ALLOWED_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
ALLOWED_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
MIN_RSA_BITS = 2048
ExtensionValue = TypeVar("ExtensionValue", bound=x509.ExtensionType)
EXTENSION_ERRORS = (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType)


class CertificateError(ValueError):
    """A certificate that cannot be used; the message is the reason, short and specific."""


def load_certificate(data: bytes) -> x509.Certificate:
    """One certificate from PEM or DER bytes."""
    certs = load_certificates(data)
    if len(certs) != 1:
        raise CertificateError(f"expected one certificate, found {len(certs)}")
    return certs[0]


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in PEM text (one or many) or a single DER blob."""
    stripped = data.strip()
    if not stripped:
        raise CertificateError("empty certificate")
    if stripped.startswith(b"-----BEGIN"):
        if PEM_MARKER not in stripped:
            raise CertificateError("PEM block is not a CERTIFICATE")
        try:
            return x509.load_pem_x509_certificates(stripped)
        except ValueError as exc:
            raise CertificateError(f"malformed PEM certificate ({_short(exc)})") from None
    try:  # DER as it is: its last bytes (a signature's) may well look like whitespace
        return [x509.load_der_x509_certificate(bytes(data))]
    except ValueError as exc:
        whole = _der_length(data)
        if whole and not data[whole:].strip():  # a DER file a tool ended with a newline
            with suppress(ValueError):
                return [x509.load_der_x509_certificate(bytes(data[:whole]))]
        raise CertificateError(f"not a certificate (neither PEM nor DER: {_short(exc)})") from None


def _der_length(data: bytes) -> int | None:
    """How long the first DER element says it is (header included), or None."""
    try:
        _cls, _method, _tag, header, contents, _trailer = asn1_parser.parse(bytes(data))
    except (ValueError, TypeError):
        return None
    return len(header) + len(contents)


def load_b64_der(text: str) -> x509.Certificate:
    """A certificate given as base64 of its DER (Microchip ``x5c``)."""
    try:
        der = base64.b64decode(text, validate=True)
    except (ValueError, TypeError):
        raise CertificateError("x5c entry is not valid base64") from None
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise CertificateError("x5c entry is base64 but not a DER certificate") from None


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else exc.__class__.__name__


def der_of(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def pem_of(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER, lower-case hex (AWS IoT's certificate ID)."""
    return hashlib.sha256(der_of(cert)).hexdigest()


def common_name(name: x509.Name) -> str | None:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else None


def key_type(cert: x509.Certificate) -> str:
    """"EC P-256", "RSA 2048" ... or raise for keys outside the policy."""
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve = ALLOWED_CURVES.get(key.curve.name)
        if curve is None:
            raise CertificateError(f"unsupported EC curve {key.curve.name}")
        return f"EC {curve}"
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise CertificateError(f"RSA key of {key.key_size} bits is below {MIN_RSA_BITS}")
        return f"RSA {key.key_size}"
    raise CertificateError(f"unsupported key type {type(key).__name__}")


def check_signature_hash(cert: x509.Certificate) -> None:
    algorithm = cert.signature_hash_algorithm
    if not isinstance(algorithm, ALLOWED_HASHES):
        name = algorithm.name if algorithm else "none"
        raise CertificateError(f"signature hash {name} is not allowed (SHA-256/384/512 only)")


def extensions(cert: x509.Certificate, *, tolerant: bool = False) -> x509.Extensions:
    """The certificate's extensions, parsed strictly; with ``tolerant``, a device certificate's
    extensions may carry the one deviation ``bindery.crypto.lenient`` accepts (and nothing else)."""
    try:
        return cert.extensions
    except EXTENSION_ERRORS as exc:
        strict_error: Exception = exc
    if tolerant:
        try:
            found = lenient.tolerant_extensions(cert)
        except EXTENSION_ERRORS as exc:
            raise CertificateError(f"certificate extensions do not parse ({_short(exc)})") from None
        if found is not None:
            return found
    elif lenient.quirk_offsets(der_of(cert)):
        raise CertificateError("certificate extensions hold a PrintableString with characters outside its set "
                               "(tolerated in device certificates only)")
    raise CertificateError(f"certificate extensions do not parse ({_short(strict_error)})")


def _extension(cert: x509.Certificate, kind: type[ExtensionValue], tolerant: bool) -> ExtensionValue | None:
    try:
        return extensions(cert, tolerant=tolerant).get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def basic_constraints(cert: x509.Certificate, *, tolerant: bool = False) -> x509.BasicConstraints | None:
    return _extension(cert, x509.BasicConstraints, tolerant)


def key_usage(cert: x509.Certificate, *, tolerant: bool = False) -> x509.KeyUsage | None:
    return _extension(cert, x509.KeyUsage, tolerant)


def subject_key_id(cert: x509.Certificate, *, tolerant: bool = False) -> str | None:
    """The Subject Key Identifier as base64url without padding (Microchip's ``kid``)."""
    ski = _extension(cert, x509.SubjectKeyIdentifier, tolerant)
    return None if ski is None else b64url(ski.digest)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise CertificateError("not valid base64url") from None


def is_self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, Exception):
        return False
    return True


@dataclass(frozen=True)
class CertificateFacts:
    """What the catalog stores about a device certificate."""

    pem: str
    fingerprint_sha256: str
    subject_cn: str | None
    serial_hex: str
    issuer: str
    key_type: str
    not_before: datetime
    not_after: datetime


def facts(cert: x509.Certificate) -> CertificateFacts:
    return CertificateFacts(
        pem=pem_of(cert),
        fingerprint_sha256=fingerprint(cert),
        subject_cn=common_name(cert.subject),
        serial_hex=format(cert.serial_number, "x"),
        issuer=cert.issuer.rfc4514_string(),
        key_type=key_type(cert),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )
