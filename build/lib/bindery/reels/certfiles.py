"""Certificate files as a reel: one PEM file (one or many certificates), one DER file (``.der``,
``.cer``, ``.crt``: Trust M certificates read off the chip), or a folder of such files, as the
vendors' tools write them. device_id = subject CN.

CA certificates and self-signed signers found among them are not devices: they are reported as
notes and left out, never imported.
"""

from __future__ import annotations

import re
from pathlib import Path

from cryptography import x509

from bindery.crypto.certs import CertificateError, basic_constraints, load_certificate
from bindery.errors import BadInput
from bindery.reels.base import RawEntry, ReadRequest, ReelHeader, Sink

BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)(?:-----END \1-----|(?=-----BEGIN )|\Z)", re.DOTALL)
CERT_SUFFIXES = (".pem", ".crt", ".cer", ".der")
DER_SEQUENCE = 0x30
LONE = "certificate"
NOT_A_DEVICE = "CA certificate, not a device — add it with `bindery trust add`"


def is_authority(cert: x509.Certificate) -> bool:
    """A CA (basicConstraints CA=true) or a self-issued certificate such as a manifest signer; False when
    the certificate is too broken to tell (the verifier then names the defect)."""
    try:
        if cert.issuer == cert.subject:
            return True
        constraints = basic_constraints(cert, tolerant=True)
    except (CertificateError, ValueError):
        return False
    return constraints is not None and constraints.ca


def _entry(ref: str, block: bytes, notes: list[str], sink: Sink) -> None:
    try:
        authority = is_authority(load_certificate(block))
    except CertificateError:
        authority = False  # the verifier names the defect
    if authority:
        notes.append(NOT_A_DEVICE if ref == LONE else f"{ref}: {NOT_A_DEVICE}")
    else:
        sink(RawEntry(ref, cert=block))


def _pem_blocks(data: bytes, label: str | None, notes: list[str], sink: Sink) -> None:
    matches = list(BLOCK.finditer(data))
    for number, match in enumerate(matches, start=1):
        if len(matches) == 1:
            ref = label or LONE
        else:
            ref = f"{label} certificate {number}" if label else f"certificate {number}"
        block = match.group(0)
        if match.group(1) != b"CERTIFICATE":
            sink(RawEntry(ref, problem=f"PEM block is {match.group(1).decode()}, not CERTIFICATE"))
        elif not block.rstrip().endswith(b"-----END CERTIFICATE-----"):
            sink(RawEntry(ref, problem="malformed PEM: block has no END line (truncated?)"))
        else:
            _entry(ref, block, notes, sink)
    if not matches:
        raise BadInput(f"{label or 'file'}: no PEM certificate found")


def _file(path: Path, label: str | None, notes: list[str], sink: Sink) -> str:
    """One file, PEM or DER by content; ``label`` names it inside a folder (None for a single file).
    Returns which of the two it was."""
    prefix = f"{label}: " if label else ""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{prefix}cannot read file ({exc.__class__.__name__})") from None
    stripped = data.strip()
    if stripped.startswith(b"-----BEGIN"):
        _pem_blocks(stripped, label, notes, sink)
        return "pem"
    if data[:1] == bytes([DER_SEQUENCE]):
        _entry(label or LONE, data, notes, sink)
        return "der"
    raise BadInput(f"{prefix}neither a PEM nor a DER certificate")


def certificate_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in CERT_SUFFIXES and p.is_file())


def read_certificate_files(request: ReadRequest, sink: Sink) -> ReelHeader:
    path = request.path
    header = ReelHeader(format="certificate-folder", vendor="generic")
    if not path.is_dir():
        notes: list[str] = []
        try:
            header.format = _file(path, None, notes, sink)
        except BadInput as exc:
            raise BadInput(f"{path.name}: {exc}") from None
        header.notes = [f"{path.name}: {note}" for note in notes]
        return header
    files = certificate_files(path)
    if not files:
        raise BadInput(f"{path.name}: folder holds no certificate files ({', '.join(CERT_SUFFIXES)})")
    for file in files:
        try:
            _file(file, file.name, header.notes, sink)
        except BadInput as exc:
            raise BadInput(f"{path.name}: {exc}") from None
    return header
