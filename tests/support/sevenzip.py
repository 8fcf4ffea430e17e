"""Writing hostile 7z archives that py7zr itself refuses to write (``../`` and absolute names)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import py7zr


def write_with_names(path: Path, members: dict[str, bytes]) -> None:
    """Write members under placeholder names of equal length, then patch the plain header."""
    placeholders = {name: "Q" * len(name) for name in members}
    with py7zr.SevenZipFile(path, "w") as archive:
        archive.set_encoded_header_mode(False)
        for index, (name, data) in enumerate(members.items()):
            placeholders[name] = f"{index:02d}" + "Q" * (len(name) - 2)
            archive.writestr(data, placeholders[name])
    raw = bytearray(path.read_bytes())
    offset, size = struct.unpack_from("<QQ", raw, 12)
    start = 32 + offset
    header = bytes(raw[start:start + size])
    for name, placeholder in placeholders.items():
        old, new = placeholder.encode("utf-16-le"), name.encode("utf-16-le")
        assert header.count(old) == 1, "placeholder must appear once in the header"
        header = header.replace(old, new)
    raw[start:start + size] = header
    struct.pack_into("<I", raw, 28, zlib.crc32(header))
    struct.pack_into("<I", raw, 8, zlib.crc32(bytes(raw[12:32])))
    path.write_bytes(bytes(raw))
