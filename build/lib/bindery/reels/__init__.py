"""Reel readers, one module per vendor format, and content-based format detection."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bindery.crypto.certs import CertificateError, load_certificates
from bindery.errors import BadInput
from bindery.reels.base import ReadRequest, ReelHeader, Sink
from bindery.reels.certfiles import NOT_A_DEVICE, certificate_files, is_authority, read_certificate_files
from bindery.reels.csvreels import read_bindery_csv, read_espressif
from bindery.reels.infineon import read_infineon
from bindery.reels.microchip import read_microchip
from bindery.reels.textfiles import read_head

Reader = Callable[[ReadRequest, Sink], ReelHeader]

READERS: dict[str, Reader] = {
    "bindery-csv": read_bindery_csv,
    "infineon": read_infineon,
    "microchip": read_microchip,
    "espressif": read_espressif,
    "pem": read_certificate_files,
    "der": read_certificate_files,
}
FORMATS = ("auto", *READERS)
SEVEN_ZIP_MAGIC = b"7z\xbc\xaf\x27\x1c"
DER_CERTIFICATE_STARTS = (b"\x30\x81", b"\x30\x82", b"\x30\x83")


def detect_format(path: Path) -> str:
    """Name the reel format from the content, not the file name."""
    if path.is_dir():
        return "pem"
    if not path.exists():
        raise BadInput(f"{path}: no such file")
    head = read_head(path)
    if not head.strip():
        raise BadInput(f"{path.name}: file is empty")
    if head.startswith(SEVEN_ZIP_MAGIC):
        return "infineon"
    if head.startswith(DER_CERTIFICATE_STARTS):
        return "der"
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"["):
        return "microchip"
    if text.startswith(b"-----BEGIN"):
        return "pem"
    first_line = text.split(b"\n", 1)[0].strip().lower().replace(b" ", b"")
    if first_line == b"device_id,group_id,certificate":
        return "bindery-csv"
    if first_line == b"mac,cn,cert":
        return "espressif"
    raise BadInput(
        f"{path.name}: unknown reel format (not a 7z bundle, JSON manifest, PEM or DER certificate, or a CSV with a "
        "known header); name one with --format"
    )


def reader_for(fmt: str, path: Path) -> tuple[str, Reader]:
    if fmt == "auto":
        fmt = detect_format(path)
    elif fmt not in READERS:
        raise BadInput(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    elif not path.exists():
        raise BadInput(f"{path}: no such file")
    elif fmt not in ("pem", "der") and not path.is_file():
        raise BadInput(f"{path.name}: not a file (only the pem and der formats read folders)")
    elif path.is_file() and path.stat().st_size == 0:
        raise BadInput(f"{path.name}: file is empty")
    return fmt, READERS[fmt]


def _is_manifest(path: Path) -> bool:
    return path.suffix.lower() == ".json" and path.is_file() and \
        read_head(path, 64).removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"[")


def resolve_reel(path: Path) -> tuple[Path, list[str]]:
    """The file that is the reel: a folder holding a manifest (as Microchip's tools write it, with
    the signer and CA certificates beside it) is that manifest; the certificates are named, not read
    as devices. Anything else is itself."""
    if not path.is_dir():
        return path, []
    manifests = sorted(p for p in path.iterdir() if _is_manifest(p))
    if not manifests:
        return path, []
    if len(manifests) > 1:
        raise BadInput(f"{path.name}: folder holds {len(manifests)} manifests "
                       f"({', '.join(p.name for p in manifests)}); import each file on its own")
    return manifests[0], [_beside_manifest(cert, manifests[0].name) for cert in certificate_files(path)]


def _beside_manifest(path: Path, manifest: str) -> str:
    try:
        authority = all(is_authority(c) for c in load_certificates(path.read_bytes()))
    except (OSError, CertificateError):
        authority = False
    return f"{path.name}: {NOT_A_DEVICE if authority else f'not part of the reel (the reel is {manifest})'}"
