"""Dummy reels shaped like the vendors' test reels, with a fresh demo CA chain and a QR code.

Root P-384 -> intermediate P-384 -> devices P-256 (RSA-2048 for Infineon's E0E2 slot), 20-year
validity, unique CN and serial. Device private keys are thrown away; so are the CA keys, so every
demo reel has its own chain (its CN carries a short random tag).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import py7zr
import segno
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from bindery.crypto.certs import b64url, der_of, pem_of
from bindery.errors import BadInput
from bindery.reels.base import check_bid
from bindery.reels.trustngo import trustngo_device

DEMO_FORMATS = ("infineon", "bindery-csv", "microchip")
VALIDITY = timedelta(days=20 * 365)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Bindery Demo"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class DemoCA:
    root: x509.Certificate
    intermediate: x509.Certificate
    intermediate_key: ec.EllipticCurvePrivateKey
    now: datetime

    @classmethod
    def create(cls) -> DemoCA:
        tag = os.urandom(3).hex().upper()
        now = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
        root_key = ec.generate_private_key(ec.SECP384R1())
        root = _ca_cert(_name(f"Bindery Demo Root CA {tag}"), root_key.public_key(), _name(
            f"Bindery Demo Root CA {tag}"), root_key, now, path_length=1)
        inter_key = ec.generate_private_key(ec.SECP384R1())
        inter = _ca_cert(_name(f"Bindery Demo Device CA {tag}"), inter_key.public_key(), root.subject,
                         root_key, now, path_length=0)
        return cls(root, inter, inter_key, now)

    def trustngo_device(self, cn: str) -> x509.Certificate:
        """Shaped like a Microchip Trust&GO device certificate, quirks included."""
        return trustngo_device(subject=_name(cn), issuer=self.intermediate.subject, issuer_key=self.intermediate_key,
                               not_before=self.now, not_after=self.now + VALIDITY)

    def device(self, cn: str, rsa_key: bool = False) -> x509.Certificate:
        key = rsa.generate_private_key(65537, 2048) if rsa_key else ec.generate_private_key(ec.SECP256R1())
        return (
            x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(self.intermediate.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(self.now).not_valid_after(self.now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, True, False, False, False, False), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.intermediate_key.public_key()), critical=False)
            .sign(self.intermediate_key, hashes.SHA256())
        )


def _ca_cert(subject: x509.Name, public_key: ec.EllipticCurvePublicKey, issuer: x509.Name,
             signing_key: ec.EllipticCurvePrivateKey, now: datetime, path_length: int) -> x509.Certificate:
    return (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(signing_key, hashes.SHA384())
    )


def chip_ids(count: int) -> Iterator[str]:
    seen: set[str] = set()
    while len(seen) < count:
        chip = os.urandom(9).hex().upper()
        if chip not in seen:
            seen.add(chip)
            yield chip


@dataclass(frozen=True)
class DemoReel:
    reel: Path
    ca_files: list[Path]
    qr_svg: Path
    qr_png: Path
    qr_text: str


def write_demo_reel(*, out: Path, bid: str, devices: int, fmt: str = "infineon", public_url: str,
                    slots: tuple[str, ...] = ("E0E0",)) -> DemoReel:
    check_bid(bid)
    if fmt not in DEMO_FORMATS:
        raise BadInput(f"unknown demo format {fmt!r}: choose one of {', '.join(DEMO_FORMATS)}")
    if devices < 1:
        raise BadInput("--devices must be at least 1")
    out.mkdir(parents=True, exist_ok=True)
    (out / "ca").mkdir(exist_ok=True)
    ca = DemoCA.create()
    ca_files = [_write(out / "ca" / "demo-root-ca.pem", pem_of(ca.root)),
                _write(out / "ca" / "demo-device-ca.pem", pem_of(ca.intermediate))]
    if fmt == "infineon":
        reel = _infineon(out, bid, devices, ca, slots)
    elif fmt == "bindery-csv":
        reel = _bindery_csv(out, bid, devices, ca)
    else:
        reel, signer = _microchip(out, bid, devices, ca)
        ca_files.append(_write(out / "ca" / "demo-manifest-signer.pem", pem_of(signer)))
    qr_text = f"{public_url.rstrip('/')}/bind?bid={bid}"
    qr = segno.make(qr_text, error="m")
    svg, png = out / f"{bid}-qr.svg", out / f"{bid}-qr.png"
    qr.save(str(svg), scale=4)
    qr.save(str(png), scale=8)
    return DemoReel(reel, ca_files, svg, png, qr_text)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _infineon(out: Path, bid: str, devices: int, ca: DemoCA, slots: tuple[str, ...]) -> Path:
    guid = str(uuid.uuid4()).upper()
    work = out / f".{bid}-work"
    work.mkdir(exist_ok=True)
    chips = list(chip_ids(devices))
    inner_paths: list[Path] = []
    for slot in slots:
        inner = work / f"{bid}_{guid}_{slot}_Certs.7z"
        with py7zr.SevenZipFile(inner, "w") as archive:
            for chip in chips:
                cert = ca.device(f"{chip}", rsa_key=slot == "E0E2")
                archive.writestr(pem_of(cert), f"{chip}_{slot}.pem")
        inner_paths.append(inner)
    keys = work / f"{bid}_{guid}_keys.7z"
    with py7zr.SevenZipFile(keys, "w", password=os.urandom(12).hex()) as archive:
        archive.writestr("Demo reels keep no device private keys.\n", "KEYS-WITHHELD.txt")
    readme = work / "README.txt"
    readme.write_text(f"Bindery demo reel {bid}: {devices} devices, slots {', '.join(slots)}.\n")
    reel = out / f"{bid}.7z"
    with py7zr.SevenZipFile(reel, "w") as archive:
        for path in [*inner_paths, keys, readme]:
            archive.write(path, path.name)
    for path in [*inner_paths, keys, readme]:
        path.unlink()
    work.rmdir()
    return reel


def _bindery_csv(out: Path, bid: str, devices: int, ca: DemoCA) -> Path:
    reel = out / f"{bid}.csv"
    with reel.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(["device_id", "group_id", "certificate"])
        for chip in chip_ids(devices):
            writer.writerow([chip, bid, pem_of(ca.device(chip))])
    return reel


def demo_signer() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"Bindery Demo Manifest Signer {os.urandom(3).hex().upper()}")
    now = datetime.now(UTC) - timedelta(days=1)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def sign_manifest_entry(payload: dict[str, object], unique_id: str, signer: x509.Certificate,
                        key: ec.EllipticCurvePrivateKey) -> dict[str, object]:
    """One entry in Microchip's general JSON JWS form, signed ES256 by the manifest signer."""
    ski = signer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    protected = {"typ": "JWT", "alg": "ES256", "kid": b64url(ski),
                 "x5t#S256": b64url(hashlib.sha256(der_of(signer)).digest())}
    protected_b64 = b64url(json.dumps(protected).encode())
    payload_b64 = b64url(json.dumps(payload).encode())
    der_sig = key.sign(f"{protected_b64}.{payload_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der_sig)
    return {"payload": payload_b64, "protected": protected_b64, "header": {"uniqueId": unique_id},
            "signature": b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))}


def manifest_payload(bid: str, unique_id: str, device: x509.Certificate,
                     intermediate: x509.Certificate) -> dict[str, object]:
    public_key = device.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    numbers = public_key.public_numbers()
    return {
        "version": 1, "model": "ATECC608B", "partNumber": "ATECC608B-TNGTLSU-DEMO",
        "manufacturer": {"organizationName": "Bindery Demo"}, "groupId": bid, "uniqueId": unique_id,
        "provisioningTimestamp": datetime.now(UTC).isoformat(),
        "publicKeySet": {"keys": [{
            "kid": "0", "kty": "EC", "crv": "P-256",
            "x": b64url(numbers.x.to_bytes(32, "big")), "y": b64url(numbers.y.to_bytes(32, "big")),
            "x5c": [base64.b64encode(der_of(device)).decode(), base64.b64encode(der_of(intermediate)).decode()],
        }]},
    }


def _microchip(out: Path, bid: str, devices: int, ca: DemoCA) -> tuple[Path, x509.Certificate]:
    signer, key = demo_signer()
    reel = out / f"{bid}.json"
    with reel.open("w", encoding="utf-8") as handle:
        handle.write("[\n")
        for number, chip in enumerate(chip_ids(devices)):
            unique_id = chip.lower()
            entry = sign_manifest_entry(manifest_payload(bid, unique_id, ca.trustngo_device(f"sn{chip}"),
                                                         ca.intermediate),
                                        unique_id, signer, key)
            handle.write(("," if number else "") + json.dumps(entry) + "\n")
        handle.write("]\n")
    return reel, signer
