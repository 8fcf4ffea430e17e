"""The CLI's error boundary: an unexpected error is one line naming the log; the traceback is in the log."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography import x509

from bindery.crypto.certs import pem_of
from bindery.reels.demo import DemoCA, write_demo_reel
from bindery.settings import Settings
from tests.conftest import Cli
from tests.support import db


def _explode(*_args: object, **_kwargs: object) -> object:
    raise RuntimeError("library exploded\nwith a second line")


def test_unexpected_error_is_one_line_and_the_traceback_goes_to_the_log(cli: Cli, tmp_path: Path,
                                                                        settings: Settings,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    demo = write_demo_reel(out=tmp_path / "r", bid="BOOM", devices=1, public_url="http://x")
    monkeypatch.setattr(x509, "load_pem_x509_certificates", _explode)
    result = cli("trust", "add", *demo.ca_files)
    log = settings.home / "logs" / "errors.log"
    assert result.code == 1
    assert result.err.strip() == (f"error: internal error (RuntimeError): library exploded with a second line; "
                                  f"details in {log}")
    assert "Traceback" not in result.err + result.out
    logged = log.read_text()
    assert "Traceback (most recent call last)" in logged and "RuntimeError: library exploded" in logged
    assert db.counts(settings.resolved_database_url)["trust_anchor"] == 0


def test_unexpected_error_inside_one_entry_rejects_that_entry(cli: Cli, tmp_path: Path, settings: Settings,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    demo = write_demo_reel(out=tmp_path / "m", bid="ENTRY", devices=2, fmt="microchip", public_url="http://x")
    cli.ok("trust", "add", *demo.ca_files)
    plain_b64decode = base64.b64decode

    def x5c_explodes(data: object, altchars: object = None, validate: bool = False) -> bytes:
        if validate:  # only the x5c certificates of a manifest entry are decoded with validation
            _explode()
        return plain_b64decode(data, altchars, validate)  # type: ignore[arg-type]

    monkeypatch.setattr(base64, "b64decode", x5c_explodes)
    result = cli("reel", "import", demo.reel)
    assert result.code == 2 and "Traceback" not in result.err
    assert "ENTRY.json: entry 1 (device " in result.err
    assert "unreadable entry (RuntimeError: library exploded with a second line)" in result.err
    assert result.err.strip().splitlines()[-1] == ("error: ENTRY.json: reel rejected, 2 of 2 entries are invalid; "
                                                    "nothing was imported")
    assert db.counts(settings.resolved_database_url)["device"] == 0


def test_unexpected_error_in_a_reader_is_bad_input_naming_the_file(cli: Cli, tmp_path: Path, settings: Settings,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    reel = tmp_path / "odd.pem"
    reel.write_text(pem_of(DemoCA.create().device("x")))
    monkeypatch.setattr(x509, "load_pem_x509_certificates", _explode)
    result = cli("reel", "import", reel, "--bid", "ODD")
    assert result.code == 2
    assert result.err.strip() == "error: odd.pem: unreadable reel (RuntimeError: library exploded with a second line)"
