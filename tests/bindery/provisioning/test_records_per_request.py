"""What a target confirmed is recorded request by request: when the second request of a chunk reaches the
receiver, the first request's devices are already provisioned in Bindery's records (a crash then re-sends
only the request in flight, not the chunk)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request

from bindery.receiver import Store, _receive
from bindery.settings import Settings
from tests.bindery.provisioning.test_kill import provisioned
from tests.conftest import Cli
from tests.support.servers import serve
from tests.support.world import ADMIN, MEMBER, make_world


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_each_request_is_recorded_before_the_next_goes_out(cli: Cli, tmp_path: Path, settings: Settings,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    monkeypatch.setenv("BINDERY_PROVISION_CHUNK_SIZE", "30")  # one chunk, several requests (they start at 5)
    monkeypatch.setenv("BINDERY_PROVISION_CONCURRENCY", "1")
    make_world(cli, tmp_path, {"Q001": [f"q-{i:02d}" for i in range(30)]})
    cli.ok("bind", "Q001", "--user", MEMBER)
    store, seen = Store(tmp_path / "recv.db"), []  # (certificates in the request, provisioned records then)
    app = FastAPI()

    @app.post("/interop")
    async def interop(request: Request) -> Any:
        body = await request.json()
        if body.get("action") == "info":
            return {"action": "info", "compatibilityVersion": 1}
        seen.append((len(body["certs"]), provisioned(settings)))
        return [_receive(item, store) for item in body["certs"]]

    with serve(app) as url:
        cli.ok("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
               "--credentials", "bindery:pw", "--url", f"{url}/interop", "--quota", "1000", "--no-check")
        cli.ok("provision", "Q001", "--cloud-api", "lab", "--user", ADMIN)
    assert len(seen) >= 2, seen
    sent_before = [sum(size for size, _ in seen[:i]) for i in range(len(seen))]
    assert [recorded for _, recorded in seen] == sent_before, "every earlier request recorded before the next"
    assert provisioned(settings) == 30
