"""Bindery's interop signing key (ES256) and the short-lived JWTs it signs for receivers."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlmodel import Session, col, select

from bindery import audit
from bindery.crypto.certs import b64url
from bindery.models.clouds import SigningKey
from bindery.secrets import decrypt, encrypt
from bindery.settings import Settings

TOKEN_LIFETIME = 300  # seconds; receivers refuse longer-lived tokens
ISSUER = "bindery"


@dataclass(frozen=True)
class Signer:
    kid: str
    private_key: ec.EllipticCurvePrivateKey
    public_pem: str

    def token(self, audience: str, now: float | None = None, lifetime: int = TOKEN_LIFETIME) -> str:
        issued = int(now if now is not None else time.time())
        claims = {"iss": ISSUER, "aud": audience, "iat": issued, "exp": issued + lifetime}
        return jwt.encode(claims, self.private_key, algorithm="ES256", headers={"kid": self.kid})


def _kid(public_der: bytes) -> str:
    return b64url(hashlib.sha256(public_der).digest()[:16])


def signing_key(*, session: Session, settings: Settings) -> Signer:
    """The current key pair, generated (and its private half encrypted) on first use."""
    row = session.exec(select(SigningKey).order_by(col(SigningKey.id).desc())).first()
    if row is None:
        private = ec.generate_private_key(ec.SECP256R1())
        public = private.public_key()
        der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode("ascii")
        row = SigningKey(kid=_kid(der), private_token=encrypt(settings, pem), public_pem=public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii"))
        session.add(row)
        audit.record(session=session, actor=audit.operator_name(), action="signing_key.create", subject=row.kid)
        session.flush()
    private_key = serialization.load_pem_private_key(decrypt(settings, row.private_token).encode(), None)
    assert isinstance(private_key, ec.EllipticCurvePrivateKey)
    return Signer(row.kid, private_key, row.public_pem)


def jwks(signer: Signer) -> str:
    public = serialization.load_pem_public_key(signer.public_pem.encode())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    numbers = public.public_numbers()
    key = {"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": signer.kid,
           "x": b64url(numbers.x.to_bytes(32, "big")), "y": b64url(numbers.y.to_bytes(32, "big"))}
    return json.dumps({"keys": [key]}, indent=2)
