"""The one tolerated certificate deviation, and nothing else: real DER through the real parsers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from bindery.crypto import certs, lenient
from bindery.crypto.chain import trust_store
from bindery.reels.demo import DemoCA
from bindery.reels.trustngo import eui48_alt_name, printable_string, resign_edited
from tests.support.certs import Chain, key, name

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def ca() -> DemoCA:
    return DemoCA.create()


def _device_template(ca: DemoCA, extra: list[x509.NameAttribute] | None = None,
                     ca_flag: bool = False) -> x509.Certificate:
    alt = eui48_alt_name("eui48-0004A3123456")
    if extra:
        alt = x509.SubjectAlternativeName([x509.DirectoryName(x509.Name(
            [x509.NameAttribute(NameOID.SERIAL_NUMBER, "eui48-0004A3123456"), *extra]))])
    return (x509.CertificateBuilder().subject_name(name("edited")).issuer_name(ca.intermediate.subject)
            .public_key(key().public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=ca_flag, path_length=None), critical=True)
            .add_extension(alt, critical=False).sign(ca.intermediate_key, hashes.SHA256()))


QUIRK = (printable_string(b"eui48-0004A3123456"), printable_string(b"eui48_0004A3123456"))


def test_trustngo_device_holds_both_quirks_and_reads_tolerantly(ca: DemoCA) -> None:
    device = ca.trustngo_device("sn0123ABCD")
    der = certs.der_of(device)
    assert lenient.quirk_offsets(der), "the demo certificate must carry the PrintableString quirk"
    assert b"\x18\x0f" in device.tbs_certificate_bytes  # GeneralizedTime validity (15 characters) before 2050
    assert device.not_valid_after_utc.year < 2050
    with pytest.raises(ValueError):
        _ = device.extensions  # cryptography's own parser refuses it: the tolerant path is what imports it
    extensions = certs.extensions(device, tolerant=True)
    alt = extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    (directory,) = alt.get_values_for_type(x509.DirectoryName)
    assert directory.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value.startswith("eui48_")
    assert certs.basic_constraints(device, tolerant=True) == x509.BasicConstraints(ca=False, path_length=None)
    assert certs.key_usage(device, tolerant=True) is not None
    assert extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    assert certs.der_of(device) == der  # the original DER is what is kept; the edited copy is never stored


def test_strict_reading_names_the_deviation(ca: DemoCA) -> None:
    device = ca.trustngo_device("sn-strict")
    with pytest.raises(certs.CertificateError, match="PrintableString with characters outside its set"):
        certs.basic_constraints(device)


def test_a_second_defect_beside_the_quirk_is_not_tolerated(ca: DemoCA) -> None:
    extra = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "zzzz", _type=_ASN1Type.UTF8String)]
    broken_utf8 = (b"\x0c\x04zzzz", b"\x0c\x04\xff\xfe\xff\xfe")
    device = resign_edited(_device_template(ca, extra), ca.intermediate_key, [QUIRK, broken_utf8])
    assert lenient.quirk_offsets(certs.der_of(device))
    with pytest.raises(certs.CertificateError, match="certificate extensions do not parse"):
        certs.basic_constraints(device, tolerant=True)


def test_a_defect_without_the_quirk_is_not_tolerated(ca: DemoCA) -> None:
    extra = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "zzzz", _type=_ASN1Type.UTF8String)]
    broken_utf8 = (b"\x0c\x04zzzz", b"\x0c\x04\xff\xfe\xff\xfe")
    device = resign_edited(_device_template(ca, extra), ca.intermediate_key, [broken_utf8])
    assert not lenient.quirk_offsets(certs.der_of(device))
    with pytest.raises(certs.CertificateError, match="certificate extensions do not parse"):
        certs.basic_constraints(device, tolerant=True)


def test_quirk_device_chains_and_every_check_still_applies(ca: DemoCA) -> None:
    store = trust_store([ca.root], [])
    device = ca.trustngo_device("sn-chain")
    store.verify(device, [ca.intermediate], NOW)
    with pytest.raises(certs.CertificateError, match="expired"):
        store.verify(device, [ca.intermediate], NOW + timedelta(days=365 * 30))
    with pytest.raises(certs.CertificateError, match="not a trusted CA"):
        trust_store([DemoCA.create().root], []).verify(device, [], NOW)
    tampered = x509.load_der_x509_certificate(certs.der_of(device).replace(b"eui48_", b"eui48X"))
    with pytest.raises(certs.CertificateError, match="signature does not verify"):
        store.verify(tampered, [ca.intermediate], NOW)
    as_ca = resign_edited(_device_template(ca, ca_flag=True), ca.intermediate_key, [QUIRK])
    with pytest.raises(certs.CertificateError, match="device certificate is a CA"):
        store.verify(as_ca, [ca.intermediate], NOW)


def test_an_issuer_is_held_to_the_strict_parser() -> None:
    """A carried intermediate with the quirk is refused: only device certificates are read tolerantly."""
    chain = Chain("strict-issuer")
    inter_key = key()
    template = (x509.CertificateBuilder().subject_name(name("Quirky CA")).issuer_name(chain.root.subject)
                .public_key(inter_key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=365))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(eui48_alt_name("eui48-0004A3123456"), critical=False)
                .sign(chain.root_key, hashes.SHA256()))
    quirky_ca = resign_edited(template, chain.root_key, [QUIRK])
    device = (x509.CertificateBuilder().subject_name(name("dev")).issuer_name(quirky_ca.subject)
              .public_key(key().public_key()).serial_number(1).not_valid_before(NOW - timedelta(days=1))
              .not_valid_after(NOW + timedelta(days=30)).sign(inter_key, hashes.SHA256()))
    with pytest.raises(certs.CertificateError, match="PrintableString"):
        trust_store([chain.root], []).verify(device, [quirky_ca], NOW)
