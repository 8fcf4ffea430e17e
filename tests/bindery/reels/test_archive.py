"""Archive bombs: caps on unpacked bytes and member count, declared and actual."""

from __future__ import annotations

from pathlib import Path

import py7zr
import pytest

from bindery.errors import BadInput
from bindery.reels.archive import checked_members, extract_each, open_archive, unsafe_member
from bindery.reels.base import ReadLimits
from bindery.settings import Settings
from tests.conftest import Cli
from tests.support import db


def nested_bundle(tmp_path: Path, inner_members: dict[str, bytes]) -> Path:
    inner = tmp_path / "R9_ABCD_E0E0_Certs.7z"
    with py7zr.SevenZipFile(inner, "w") as archive:
        for name, data in inner_members.items():
            archive.writestr(data, name)
    outer = tmp_path / "bundle.7z"
    with py7zr.SevenZipFile(outer, "w") as archive:
        archive.write(inner, inner.name)
    return outer


@pytest.mark.parametrize("name", ["../x.pem", "/abs.pem", "a/../../b.pem", "C:/win.pem", "..\\\\up.pem"])
def test_unsafe_member_names(name: str) -> None:
    assert unsafe_member(name)


@pytest.mark.parametrize("name", ["a.pem", "dir/b.pem", "..hidden.pem"])
def test_safe_member_names(name: str) -> None:
    assert not unsafe_member(name)


def test_bomb_by_bytes_is_refused(cli: Cli, tmp_path: Path, settings: Settings,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_MAX_EXTRACT_BYTES", str(1_000_000))
    bundle = nested_bundle(tmp_path, {"CHIP_E0E0.pem": b"\0" * 5_000_000})
    assert bundle.stat().st_size < 10_000
    before = db.counts(settings.resolved_database_url)
    result = cli("reel", "import", bundle)
    assert result.code == 2
    assert "unpacks to 5000000 bytes, more than the cap of 1000000 (BINDERY_MAX_EXTRACT_BYTES)" in result.err
    assert db.counts(settings.resolved_database_url) == before


def test_bomb_by_member_count_is_refused(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_MAX_ARCHIVE_MEMBERS", "10")
    bundle = nested_bundle(tmp_path, {f"C{i:03d}_E0E0.pem": b"x" for i in range(11)})
    result = cli("reel", "import", bundle)
    assert result.code == 2 and "has 11 members, more than the cap of 10" in result.err


def test_actual_bytes_are_capped_even_when_declared_sizes_pass(tmp_path: Path) -> None:
    """The running budget stops extraction too, not only the declared sizes."""
    path = tmp_path / "a.7z"
    with py7zr.SevenZipFile(path, "w") as archive:
        archive.writestr(b"\0" * 300_000, "a.pem")
        archive.writestr(b"\0" * 300_000, "b.pem")
    generous = ReadLimits(max_extract_bytes=10_000_000, max_archive_members=10)
    seen: list[str] = []
    with open_archive(path, "a.7z") as archive:
        names = [i.filename for i in checked_members(archive, "a.7z", generous)]
        with pytest.raises(BadInput, match="more than the cap of 400000 bytes"):
            extract_each(archive, names, "a.7z", ReadLimits(400_000, 10), lambda name, _data: seen.append(name))
    assert seen == ["a.pem"]
