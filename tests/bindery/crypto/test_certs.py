"""Reading certificates: DER is taken byte for byte (its last bytes may look like whitespace)."""

from __future__ import annotations

from bindery.crypto.certs import der_of, fingerprint, load_certificate
from tests.support.certs import Chain

WHITESPACE = b" \t\n\r\x0b\x0c"


def test_der_ending_in_a_whitespace_byte_is_read_whole() -> None:
    chain = Chain("ws")
    for attempt in range(2000):  # ECDSA signatures are random: about 1 in 43 ends in such a byte
        device = chain.device(f"ws-{attempt}")
        der = der_of(device)
        if der[-1:] in [bytes([b]) for b in WHITESPACE]:
            break
    else:
        raise AssertionError("no certificate ended in a whitespace byte")
    assert fingerprint(load_certificate(der)) == fingerprint(device)
    assert fingerprint(load_certificate(der + b"\n")) == fingerprint(device), "a trailing newline is tolerated"
