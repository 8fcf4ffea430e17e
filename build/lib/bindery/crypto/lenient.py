"""The one tolerated deviation in certificates from the field, read with asn1crypto's DER parser.

Microchip Trust&GO device certificates carry ``serialNumber=eui48_<MAC>`` in a subjectAltName
directoryName as an ASN.1 PrintableString, and ``_`` is not a PrintableString character.
cryptography >= 45 then refuses to parse *any* extension of the certificate. Bindery tolerates
exactly that deviation and nothing else:

1. the certificate's DER is walked with asn1crypto's parser (a kept library, no ASN.1 of our own),
   down into each extension value, and every PrintableString holding a character outside
   PrintableString's set is noted;
2. a copy of the DER is made in which only those strings' tag bytes are changed to UTF8String (the
   same length, so no other byte moves);
3. cryptography parses that copy's extensions *strictly*. Any other defect still fails there.

The copy is only ever read for its extension values: signatures, fingerprints and what is stored or
sent are always the original DER.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from asn1crypto import parser
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

PRINTABLE = re.compile(rb"[A-Za-z0-9 '()+,\-./:=?]*")
UNIVERSAL, CONTEXT = 0, 2
TAG_OCTET_STRING, TAG_PRINTABLE_STRING, TAG_UTF8_STRING = 4, 19, 12
TBS_EXTENSIONS_TAG = 3


def _elements(data: bytes, base: int) -> Iterator[tuple[int, int, int, int, bytes, int]]:
    """(offset, class, method, tag, contents, contents offset) of each element in ``data``, in order."""
    pos = 0
    while pos < len(data):
        cls, method, tag, header, contents, trailer = parser.parse(data[pos:])
        yield base + pos, cls, method, tag, contents, base + pos + len(header)
        pos += len(header) + len(contents) + len(trailer)


def _bad_printables(data: bytes, base: int) -> Iterator[int]:
    """Offsets of the tag byte of every PrintableString with a character outside its set."""
    for offset, cls, method, tag, contents, inner in _elements(data, base):
        if method == 1:
            yield from _bad_printables(contents, inner)
        elif cls == UNIVERSAL and tag == TAG_PRINTABLE_STRING and not PRINTABLE.fullmatch(contents):
            yield offset


def _extension_values(der: bytes) -> Iterator[tuple[bytes, int]]:
    """(DER, offset) of every extnValue: Certificate > TBS > [3] > SEQUENCE OF Extension > OCTET STRING."""
    (_, _, _, _, certificate, cert_at), = _elements(der, 0)
    _, _, _, _, tbs, tbs_at = next(_elements(certificate, cert_at))
    for _, cls, _, tag, wrapper, wrapper_at in _elements(tbs, tbs_at):
        if cls != CONTEXT or tag != TBS_EXTENSIONS_TAG:
            continue
        (_, _, _, _, extension_list, list_at), = _elements(wrapper, wrapper_at)
        for _, _, _, _, extension, extension_at in _elements(extension_list, list_at):
            *_, (_, value_cls, value_method, value_tag, value, value_at) = _elements(extension, extension_at)
            if value_cls == UNIVERSAL and value_method == 0 and value_tag == TAG_OCTET_STRING:
                yield value, value_at


def quirk_offsets(der: bytes) -> list[int]:
    """Where the extensions hold the tolerated deviation; empty when they do not (or cannot be walked)."""
    try:
        return [offset for value, at in _extension_values(der) for offset in _bad_printables(value, at)]
    except (ValueError, TypeError):
        return []


def tolerant_extensions(cert: x509.Certificate) -> x509.Extensions | None:
    """The extensions of a certificate whose only defect is the tolerated one; None when the strict
    parser's refusal has another cause. Raises ValueError when something else is wrong as well."""
    der = bytearray(cert.public_bytes(Encoding.DER))
    offsets = quirk_offsets(bytes(der))
    if not offsets:
        return None
    for offset in offsets:
        der[offset] = TAG_UTF8_STRING
    return x509.load_der_x509_certificate(bytes(der)).extensions

