"""`bindery doctor` and `bindery --version`: one line per check, each problem with its fix."""

from __future__ import annotations

import socket
from importlib.metadata import version
from pathlib import Path

import pytest

from bindery.settings import Settings
from tests.conftest import Cli


def lines(out: str) -> dict[str, str]:
    found = {}
    for line in out.splitlines():
        state, _, rest = line.partition(" ")
        check, _, said = rest.strip().partition(": ")
        found[check] = f"{state}: {said}"
    return found


def test_version(cli: Cli) -> None:
    assert cli.ok("--version").out.strip() == f"bindery {version('bindery')}"


def test_a_new_installation_is_told_what_to_do(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_DATABASE_URL", f"sqlite:///{tmp_path / 'new.db'}")
    result = cli("doctor")
    assert result.code == 1
    assert lines(result.out)["database"].startswith("problem: sqlite:///")
    assert "revision none, the code needs" in result.out and "fix: bindery db upgrade" in result.out
    cli.ok("db", "upgrade")
    after = cli("doctor")
    assert after.code == 1 and lines(after.out)["database"].startswith("ok: ")
    assert lines(after.out)["trust anchors"] == ("problem: none stored: no reel can be verified — fix: bindery trust "
                                                 "add --vendor all (or your vendor's CA files)")


def test_a_healthy_installation_is_all_ok(cli: Cli, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    cli.ok("trust", "add", "--vendor", "microchip")
    cli.ok("keys", "public")  # makes the signing key and, on the embedded default, the secret key file
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    result = cli.ok("doctor")
    found = lines(result.out)
    assert set(found) == {"database", "secret key", "trust anchors", "signing key", "Prefect API"}
    assert all(v.startswith("ok: ") for v in found.values()), result.out
    assert found["trust anchors"] == "ok: 10 stored" and found["signing key"] == "ok: ES256 key present"


def test_loose_secret_key_file_and_unreachable_prefect_are_problems(cli: Cli, settings: Settings,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cli.ok("keys", "public")
    settings.secret_key_file.chmod(0o644)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{port}/api")
    result = cli("doctor")
    assert result.code == 1
    found = lines(result.out)
    assert found["secret key"] == f"problem: {settings.secret_key_file} is readable by others (mode 644) — fix: " \
                                  f"chmod 600 {settings.secret_key_file}"
    assert found["Prefect API"].startswith(f"problem: http://127.0.0.1:{port}/api unreachable (ConnectError)")


def test_no_vendor_anchor_is_a_warning_and_cloud_apis_are_contacted(cli: Cli, tmp_path: Path, receiver: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.bindery.provisioning.test_status import closed_port_url
    from tests.support.world import ADMIN, make_world

    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    make_world(cli, tmp_path, {"DR1": ["dr-1"]})  # its own CA only
    cli.ok("keys", "public")
    plain = cli.ok("doctor")
    found = lines(plain.out)
    assert found["trust anchors"].startswith("warning: 2 stored, none of them a chip vendor's"), plain.out
    assert "fix: bindery trust add --vendor all" in plain.out and "cloud API" not in plain.out
    down = closed_port_url()
    for name, url in (("lab", f"{receiver}/interop"), ("down", down)):
        cli.ok("cloud-api", "add", name, "--user", ADMIN, "--kind", "other", "--type", "private cloud",
               "--credentials", "bindery:pw", "--url", url, "--no-check")
    checked = cli("doctor", "--cloud-apis")
    assert checked.code == 1, checked.out
    found = lines(checked.out)
    assert found["cloud API Acme/lab"] == "ok: other: target answered"
    assert found["cloud API Acme/down"].startswith(f"problem: other: connection to {down} failed (ConnectError)")
    assert "fix: check the target, or its settings: bindery cloud-api update down" in checked.out
    cli.ok("trust", "add", "--vendor", "stm")
    assert lines(cli.ok("doctor").out)["trust anchors"].startswith("ok: ")
