"""Safe reading of 7z archives: no path escapes, capped member count and unpacked size."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import py7zr
from py7zr.io import Py7zIO, WriterFactory

from bindery.errors import BadInput
from bindery.reels.base import ReadLimits


def unsafe_member(name: str) -> bool:
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":"):
        return True
    return ".." in PurePosixPath(normalized).parts


def open_archive(path: Path, source: str) -> py7zr.SevenZipFile:
    try:
        return py7zr.SevenZipFile(path, "r")
    except (py7zr.exceptions.Bad7zFile, EOFError, OSError, ValueError, KeyError, IndexError) as exc:
        raise BadInput(f"{source}: truncated or corrupt 7z archive ({exc.__class__.__name__})") from None


def checked_members(archive: py7zr.SevenZipFile, source: str, limits: ReadLimits) -> list[Any]:
    """The archive's file members, after refusing unsafe paths and declared bombs."""
    infos = [info for info in archive.list() if not info.is_directory]
    if len(infos) > limits.max_archive_members:
        raise BadInput(f"{source}: archive has {len(infos)} members, more than the cap of "
                       f"{limits.max_archive_members} (BINDERY_MAX_ARCHIVE_MEMBERS)")
    declared = 0
    for info in infos:
        if unsafe_member(info.filename):
            raise BadInput(f"{source}: archive member {info.filename!r} has an unsafe path")
        declared += int(info.uncompressed or 0)
    if declared > limits.max_extract_bytes:
        raise BadInput(f"{source}: archive unpacks to {declared} bytes, more than the cap of "
                       f"{limits.max_extract_bytes} (BINDERY_MAX_EXTRACT_BYTES)")
    return infos


class _Budget:
    def __init__(self, limit: int, source: str):
        self.left = limit
        self.limit = limit
        self.source = source

    def spend(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise BadInput(f"{self.source}: archive unpacks to more than the cap of {self.limit} bytes "
                           "(BINDERY_MAX_EXTRACT_BYTES)")


class _Member(Py7zIO):
    """Collects one member's bytes (members here are small files) and hands them on when done."""

    def __init__(self, name: str, budget: _Budget, done: Callable[[str, bytes], None]):
        self.name, self.budget, self.done = name, budget, done
        self.parts: list[bytes] = []
        self._size = 0

    def write(self, s: bytes | bytearray) -> int:
        self.budget.spend(len(s))
        self._size += len(s)
        self.parts.append(bytes(s))
        return len(s)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def flush(self) -> None:
        return None

    def size(self) -> int:
        return self._size

    def close(self) -> None:
        data = b"".join(self.parts)
        self.parts = []
        self.done(self.name, data)


class _FileMember(_Member):
    """Writes one member to a file (for nested archives, which may be large)."""

    def __init__(self, name: str, budget: _Budget, target: Path):
        super().__init__(name, budget, lambda _n, _d: None)
        self.handle = target.open("wb")

    def write(self, s: bytes | bytearray) -> int:
        self.budget.spend(len(s))
        self._size += len(s)
        self.handle.write(s)
        return len(s)

    def close(self) -> None:
        self.handle.close()


class _Factory(WriterFactory):
    def __init__(self, make: Callable[[str], Py7zIO]):
        self.make = make

    def create(self, filename: str) -> Py7zIO:
        return self.make(filename)


def _extract(archive: py7zr.SevenZipFile, targets: list[str], factory: WriterFactory, source: str) -> None:
    try:
        archive.extract(targets=targets, factory=factory)
    except BadInput:
        raise
    except (py7zr.exceptions.Bad7zFile, py7zr.exceptions.PasswordRequired, EOFError, OSError,
            ValueError, KeyError, IndexError, RuntimeError) as exc:
        raise BadInput(f"{source}: truncated or corrupt 7z archive ({exc.__class__.__name__})") from None


def extract_to_file(archive: py7zr.SevenZipFile, member: str, target: Path, source: str,
                    limits: ReadLimits) -> None:
    budget = _Budget(limits.max_extract_bytes, source)
    _extract(archive, [member], _Factory(lambda name: _FileMember(name, budget, target)), source)


def extract_each(archive: py7zr.SevenZipFile, members: list[str], source: str, limits: ReadLimits,
                 handle: Callable[[str, bytes], None]) -> None:
    """Unpack members one by one, calling ``handle(name, data)`` as each completes (flat memory)."""
    budget = _Budget(limits.max_extract_bytes, source)
    _extract(archive, members, _Factory(lambda name: _Member(name, budget, handle)), source)
