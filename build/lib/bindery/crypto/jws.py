"""Verification of Microchip manifest entries: ES256 JWS in general JSON serialization.

The signer is named by ``kid`` (base64url Subject Key Identifier) and ``x5t#S256`` (base64url
SHA-256 of the signer's DER); both must match one stored manifest-signer certificate. A signer
that has since expired is accepted: manifests are imported years after they were signed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from bindery.crypto.certs import CertificateError, b64url, b64url_decode, der_of, subject_key_id


@dataclass(frozen=True)
class Signer:
    kid: str
    x5t_s256: str
    key: ec.EllipticCurvePublicKey


def signers_from(certs: Iterable[x509.Certificate]) -> dict[str, list[Signer]]:
    index: dict[str, list[Signer]] = {}
    for cert in certs:
        kid = subject_key_id(cert)
        key = cert.public_key()
        if kid and isinstance(key, ec.EllipticCurvePublicKey):
            signer = Signer(kid, b64url(hashlib.sha256(der_of(cert)).digest()), key)
            index.setdefault(kid, []).append(signer)
    return index


def verify_entry(entry: dict[str, Any], signers: dict[str, list[Signer]]) -> dict[str, Any]:
    """Check one manifest entry's signature; return its decoded payload."""
    try:
        protected_b64, payload_b64, signature_b64 = entry["protected"], entry["payload"], entry["signature"]
        header = json.loads(b64url_decode(protected_b64))
    except (KeyError, TypeError, ValueError, CertificateError):
        raise CertificateError("entry is not a JWS (protected, payload, signature)") from None
    if not isinstance(header, dict) or header.get("alg") != "ES256":
        raise CertificateError("JWS algorithm is not ES256")
    kid, x5t = header.get("kid"), header.get("x5t#S256")
    matches = [s for s in signers.get(str(kid), []) if s.x5t_s256 == x5t]
    if not matches:
        raise CertificateError(f"unknown manifest signer kid={kid} (add its certificate with `bindery trust add`)")
    raw = b64url_decode(signature_b64)
    if len(raw) != 64:
        raise CertificateError("bad signature: ES256 signature is not 64 bytes")
    signature = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    signing_input = f"{protected_b64}.{payload_b64}".encode("ascii")
    try:
        matches[0].key.verify(signature, signing_input, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise CertificateError("manifest signature does not verify (payload tampered or bad signature)") from None
    try:
        payload = json.loads(b64url_decode(payload_b64))
    except ValueError:
        raise CertificateError("signed payload is not JSON") from None
    if not isinstance(payload, dict):
        raise CertificateError("signed payload is not a JSON object")
    return payload
