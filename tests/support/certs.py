"""Building certificates for tests: good chains and precisely broken ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bindery.crypto.certs import pem_of

NOW = datetime.now(UTC).replace(microsecond=0)


def name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Bindery Tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def cert(subject: str, subject_key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey,
         *, ca: bool | None, not_before: datetime = NOW - timedelta(days=1),
         not_after: datetime = NOW + timedelta(days=3650)) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
               .public_key(subject_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after))
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


class Chain:
    """A root and an intermediate; devices issued by the intermediate."""

    def __init__(self, tag: str):
        self.tag = tag
        self.root_key, self.inter_key = key(), key()
        self.root = cert(f"Root {tag}", self.root_key, f"Root {tag}", self.root_key, ca=True)
        self.inter = cert(f"Inter {tag}", self.inter_key, f"Root {tag}", self.root_key, ca=True)

    def device(self, cn: str, **kwargs: object) -> x509.Certificate:
        return cert(cn, key(), f"Inter {self.tag}", self.inter_key, ca=False, **kwargs)  # type: ignore[arg-type]

    def write_ca(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / f"root-{self.tag}.pem", folder / f"inter-{self.tag}.pem"]
        paths[0].write_text(pem_of(self.root))
        paths[1].write_text(pem_of(self.inter))
        return paths


def write_csv(path: Path, rows: list[tuple[str, str, str]], header: str = "device_id,group_id,certificate") -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as handle:
        handle.write(header + "\r\n")
        writer = csv.writer(handle, lineterminator="\r\n")
        for row in rows:
            writer.writerow(row)
    return path
