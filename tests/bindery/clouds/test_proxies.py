"""Behind a corporate proxy with no local DNS for public names: add checks what it can and leaves the rest
to the proxy (said once), and every interop call goes through the proxy."""

from __future__ import annotations

from pathlib import Path

import pytest

from bindery.receiver import ReceiverAuth, create_app
from tests.conftest import Cli
from tests.support.connect_proxy import ProxyLog, connect_proxy
from tests.support.servers import held, serve
from tests.support.tls import make_tls
from tests.support.world import ADMIN, make_world

NAME = "receiver.bindery-proxy.test"  # resolves nowhere but in the proxy's table


@pytest.fixture
def behind_proxy(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Cli, ProxyLog, str, str]:
    tls = make_tls(tmp_path / "tls", names=(NAME,))
    make_world(cli, tmp_path, {"PX-1": [f"px-{i}" for i in range(5)]})
    cli.ok("bind", "PX-1", "--user", ADMIN)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca))
    monkeypatch.delenv("BINDERY_ALLOW_PRIVATE_TARGETS", raising=False)
    return cli, ProxyLog(hosts={}), str(tls.cert), str(tls.key)


def test_add_and_provision_through_a_connect_proxy(behind_proxy: tuple[Cli, ProxyLog, str, str], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cli, log, cert, key = behind_proxy
    app = create_app(ReceiverAuth(basic="bindery:pw"), tmp_path / "recv.db")
    with serve(app, ssl={"cert": cert, "key": key}) as receiver, connect_proxy(log) as proxy:
        port = int(receiver.rsplit(":", 1)[1])
        log.hosts[NAME] = ("127.0.0.1", port)
        url = f"https://{NAME}:{port}/interop"
        refused = cli("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "AWS",
                      "--credentials", "bindery:pw", "--url", url)
        assert refused.code == 2 and f"cannot resolve host {NAME}" in refused.err, "no proxy: no way to check"
        monkeypatch.setenv("HTTPS_PROXY", proxy)
        added = cli.ok("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "AWS",
                       "--credentials", "bindery:pw", "--url", url)
        assert "added Product Cloud API lab (other), checked" in added.out
        assert added.err.count(f"note: {NAME} does not resolve here: the address check is left to the proxy "
                               "(http://127.0.0.1)") == 1
        cli.ok("provision", "PX-1", "--cloud-api", "lab", "--user", ADMIN)
        monkeypatch.delenv("HTTPS_PROXY")
        assert held(receiver) == [f"px-{i}" for i in range(5)]
    assert log.connects and set(log.connects) == {f"{NAME}:{port}"}
    assert len(log.connects) >= 2, "the check and the provisioning both went through the proxy"


def test_what_can_be_checked_still_is_behind_a_proxy(behind_proxy: tuple[Cli, ProxyLog, str, str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    cli, log, _cert, _key = behind_proxy
    with connect_proxy(log) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy)
        literal = cli("cloud-api", "add", "x", "--user", ADMIN, "--kind", "other", "--type", "AWS",
                      "--credentials", "a:b", "--url", "https://10.1.2.3/interop", "--no-check")
        assert literal.code == 2 and "non-public address 10.1.2.3" in literal.err
        resolving = cli("cloud-api", "add", "y", "--user", ADMIN, "--kind", "other", "--type", "AWS",
                        "--credentials", "a:b", "--url", "https://localhost/interop", "--no-check")
        assert resolving.code == 2 and "non-public address" in resolving.err
        monkeypatch.setenv("NO_PROXY", NAME)
        bypassed = cli("cloud-api", "add", "z", "--user", ADMIN, "--kind", "other", "--type", "AWS",
                       "--credentials", "a:b", "--url", f"https://{NAME}/interop")
        assert bypassed.code == 2 and f"cannot resolve host {NAME}" in bypassed.err
    assert log.connects == []
