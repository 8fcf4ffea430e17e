"""A running console (real uvicorn on a loopback port) over a small world: Acme (admin, member), Beta."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bindery.receiver import ReceiverAuth, create_app
from bindery.settings import Settings, get_settings
from bindery.web.app import create_app as create_web
from tests.conftest import Cli
from tests.support.servers import serve
from tests.support.world import ADMIN, MEMBER, OTHER, make_world

DEVICES = {"W001": [f"w1-{i:03d}" for i in range(12)], "W002": [f"w2-{i:03d}" for i in range(3)],
           "W003": [f"w3-{i:03d}" for i in range(2)]}
PASSWORD = "correct horse battery"


@dataclass
class Console:
    url: str
    receiver: str
    tokens: dict[str, str]
    cli: Cli

    def client(self, who: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture
def console(cli: Cli, tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Console]:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    monkeypatch.setenv("BINDERY_PROVISION_CHUNK_SIZE", "4")
    make_world(cli, tmp_path, DEVICES)
    tokens = {}
    for email in (ADMIN, MEMBER, OTHER):
        monkeypatch.setenv("WEB_TEST_PASSWORD", PASSWORD)
        cli.ok("user", "set-password", email, "--password-env", "WEB_TEST_PASSWORD")
        tokens[email] = cli.ok("token", "create", "--user", email, "--name", "tests").out.strip().splitlines()[-1]
    with serve(create_app(ReceiverAuth(basic="bindery:pw-secret-value"), tmp_path / "recv.db")) as receiver, \
            serve(create_web(get_settings())) as url:
        yield Console(url, receiver, tokens, cli)
