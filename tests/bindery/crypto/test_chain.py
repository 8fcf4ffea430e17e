"""Chain rules on real vendor CAs and on test chains built to break one rule at a time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509

from bindery.crypto.certs import CertificateError, load_certificate
from bindery.crypto.chain import TrustStore, signed_by
from tests.conftest import VENDOR_CA
from tests.support.certs import NOW, Chain, cert, key


def vendor(name: str) -> x509.Certificate:
    return load_certificate((VENDOR_CA / name).read_bytes())


def test_real_infineon_intermediates_are_signed_by_their_roots() -> None:
    ecc_root, ca306 = vendor("OptigaECCRootCA2.crt"), vendor("OptigaTrustEccCA306.crt")
    rsa_root, ca309 = vendor("OptigaRSARootCA2.crt"), vendor("OptigaTrustRsaCA309.crt")
    assert signed_by(ca306, ecc_root)
    assert signed_by(ca309, rsa_root)
    assert not signed_by(ca306, rsa_root)
    assert signed_by(ecc_root, ecc_root)


def test_device_chains_through_stored_intermediate() -> None:
    chain = Chain("a")
    store = TrustStore(roots=[chain.root], intermediates=[chain.inter])
    store.verify(chain.device("dev-1"), [], NOW)


def test_carried_intermediate_is_used_but_not_trusted_alone() -> None:
    chain = Chain("b")
    TrustStore(roots=[chain.root]).verify(chain.device("dev-1"), [chain.inter], NOW)
    with pytest.raises(CertificateError, match="untrusted chain"):
        TrustStore(roots=[]).verify(chain.device("dev-2"), [chain.inter], NOW)


def test_forged_signature_with_right_issuer_name_is_refused() -> None:
    chain = Chain("c")
    forged = cert("dev-x", key(), "Inter c", key(), ca=False)
    with pytest.raises(CertificateError, match="signature does not verify"):
        TrustStore(roots=[chain.root], intermediates=[chain.inter]).verify(forged, [], NOW)


def test_issuer_without_ca_flag_is_refused() -> None:
    root_key, inter_key = key(), key()
    root = cert("Root d", root_key, "Root d", root_key, ca=True)
    not_a_ca = cert("Inter d", inter_key, "Root d", root_key, ca=False)
    device = cert("dev", key(), "Inter d", inter_key, ca=False)
    with pytest.raises(CertificateError, match="not a CA"):
        TrustStore(roots=[root], intermediates=[not_a_ca]).verify(device, [], NOW)


@pytest.mark.parametrize(("shift", "message"), [(timedelta(days=-30), "not yet valid"),
                                                  (timedelta(days=4000), "has expired")])
def test_device_outside_validity_window_is_refused(shift: timedelta, message: str) -> None:
    chain = Chain("e")
    store = TrustStore(roots=[chain.root], intermediates=[chain.inter])
    with pytest.raises(CertificateError, match=message):
        store.verify(chain.device("dev"), [], NOW + shift)


def test_device_that_is_a_ca_is_refused() -> None:
    chain = Chain("f")
    device = cert("dev", key(), "Inter f", chain.inter_key, ca=True)
    with pytest.raises(CertificateError, match="device certificate is a CA"):
        TrustStore(roots=[chain.root], intermediates=[chain.inter]).verify(device, [], NOW)


def test_several_candidates_with_one_name_are_all_tried() -> None:
    first, second = Chain("g"), Chain("g")
    store = TrustStore(roots=[first.root, second.root], intermediates=[first.inter, second.inter])
    store.verify(first.device("one"), [], NOW)
    store.verify(second.device("two"), [], NOW)
