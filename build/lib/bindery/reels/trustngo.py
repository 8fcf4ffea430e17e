"""Trust&GO-shaped device certificates for demo reels, with the real parts' quirks.

Real Microchip Trust&GO device certificates carry a subjectAltName directoryName
``serialNumber=eui48_<MAC>`` as a PrintableString (``_`` is outside its set) and store dates before
2050 as GeneralizedTime. cryptography will not write either, so the TBS is edited as DER (asn1crypto
re-encodes the validity; bytes are replaced in place) and signed again.
"""

from __future__ import annotations

import os
from datetime import datetime

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID


def _generalized(when: datetime) -> asn1_x509.Time:
    return asn1_x509.Time(name="general_time", value=when)


def resign_edited(template: x509.Certificate, issuer_key: ec.EllipticCurvePrivateKey,
                  replace: list[tuple[bytes, bytes]], generalized_time: bool = False) -> x509.Certificate:
    """``template`` with each byte string of ``replace`` (each found exactly once in the TBS) swapped
    for its replacement, optionally GeneralizedTime validity, signed again with ``issuer_key``."""
    tbs = asn1_x509.TbsCertificate.load(template.tbs_certificate_bytes)
    if generalized_time:
        tbs["validity"] = asn1_x509.Validity({"not_before": _generalized(template.not_valid_before_utc),
                                              "not_after": _generalized(template.not_valid_after_utc)})
    tbs_der = tbs.dump()
    for old, new in replace:
        if tbs_der.count(old) != 1:
            raise ValueError(f"{old!r} is not unique in the TBS")
        tbs_der = tbs_der.replace(old, new)
    signature = issuer_key.sign(tbs_der, ec.ECDSA(hashes.SHA256()))
    certificate = asn1_x509.Certificate({
        "tbs_certificate": asn1_x509.TbsCertificate.load(tbs_der),
        "signature_algorithm": asn1_x509.Certificate.load(template.public_bytes(Encoding.DER))["signature_algorithm"],
        "signature_value": signature,
    })
    return x509.load_der_x509_certificate(certificate.dump())


def printable_string(text: bytes) -> bytes:
    """The DER of a short PrintableString (tag 0x13), whatever its characters."""
    return b"\x13" + bytes([len(text)]) + text


def eui48_alt_name(stand_in: str) -> x509.SubjectAlternativeName:
    return x509.SubjectAlternativeName([x509.DirectoryName(x509.Name(
        [x509.NameAttribute(NameOID.SERIAL_NUMBER, stand_in)]))])


def trustngo_device(*, subject: x509.Name, issuer: x509.Name, issuer_key: ec.EllipticCurvePrivateKey,
                    not_before: datetime, not_after: datetime) -> x509.Certificate:
    """A P-256 device certificate signed by ``issuer_key`` with both Trust&GO quirks."""
    key = ec.generate_private_key(ec.SECP256R1())
    mac = os.urandom(6).hex().upper()
    template = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, True, False, False, False, False), critical=True)
        .add_extension(eui48_alt_name(f"eui48-{mac}"), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
    quirk = (printable_string(f"eui48-{mac}".encode()), printable_string(f"eui48_{mac}".encode()))
    return resign_edited(template, issuer_key, [quirk], generalized_time=True)
