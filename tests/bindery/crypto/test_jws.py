"""Microchip manifest signatures, on the real sample manifest and its real (expired) signer."""

from __future__ import annotations

import json

import pytest

from bindery.crypto.certs import CertificateError, b64url, b64url_decode, load_certificate
from bindery.crypto.jws import signers_from, verify_entry
from tests.conftest import MICROCHIP_SAMPLE, VENDOR_CA

MANIFEST = MICROCHIP_SAMPLE / "manifest_ATECC608A-MAH4I.json"


def real_signers() -> dict:
    return signers_from(load_certificate(p.read_bytes()) for p in VENDOR_CA.glob("MCHP_manifest_signer_*.crt"))


def test_real_manifest_entries_verify_with_expired_log_signer_002() -> None:
    entries = json.loads(MANIFEST.read_text())
    payloads = [verify_entry(entry, real_signers()) for entry in entries]
    assert [p["uniqueId"] for p in payloads] == [e["header"]["uniqueId"] for e in entries]
    assert payloads[0]["partNumber"] == "ATECC608A-MAH4I"


def test_tampered_payload_is_refused() -> None:
    entry = json.loads(MANIFEST.read_text())[0]
    payload = json.loads(b64url_decode(entry["payload"]))
    payload["groupId"] = "2"
    entry["payload"] = b64url(json.dumps(payload).encode())
    with pytest.raises(CertificateError, match="does not verify"):
        verify_entry(entry, real_signers())


def test_unknown_signer_is_refused() -> None:
    entry = json.loads(MANIFEST.read_text())[0]
    with pytest.raises(CertificateError, match="unknown manifest signer"):
        verify_entry(entry, {})
