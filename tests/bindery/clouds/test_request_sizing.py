"""Requests sized to the target: a receiver slower than the gateway's cut, through the real CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bindery.clouds.base import DeviceCert, Outcome
from bindery.clouds.interop import InteropConnector, RequestSizer, basic
from bindery.crypto.certs import fingerprint, pem_of
from bindery.settings import Settings
from tests.conftest import Cli
from tests.support import db
from tests.support.certs import Chain
from tests.support.gateway import GatewayLog, create_slow_gateway
from tests.support.servers import held, serve
from tests.support.world import ADMIN, make_world


def test_sizer_grows_under_half_the_budget_and_settles_at_it() -> None:
    sizer = RequestSizer(budget=20, maximum=100)
    sizes = []
    for _ in range(6):
        size = sizer.current()
        sizes.append(size)
        sizer.took(size, 0.4 * size)
    assert sizes == [5, 10, 20, 25, 25, 25]


def test_sizer_halves_on_a_cut_and_keeps_to_its_maximum() -> None:
    sizer = RequestSizer(budget=20, maximum=8)
    sizer.took(5, 0.05)
    assert sizer.current() == 8
    sizer.cut()
    assert sizer.current() == 4
    for _ in range(3):
        sizer.cut()
    assert sizer.current() == 1
    sizer.took(1, 30.0)
    assert sizer.current() == 1


def test_cut_requests_are_probed_in_smaller_ones_and_every_device_lands_once(receiver: str) -> None:
    log = GatewayLog()
    chain = Chain("probe")
    certs = [chain.device(f"probe-{i:02d}") for i in range(30)]
    devices = [DeviceCert(f"probe-{i:02d}", pem_of(c), fingerprint(c)) for i, c in enumerate(certs)]
    with serve(create_slow_gateway(receiver, log, seconds_per_cert=0.05, cut_at=0.4)) as gateway:
        connector = InteropConnector(f"{gateway}/interop", basic("bindery:pw"), timeout=30, allow_private=True,
                                     max_request=100)
        connector.sizer.size = 20  # as if learned on a faster day: the first requests get cut
        try:
            results = connector.provision(devices)
        finally:
            connector.close()
    assert [r.outcome for r in results] == [Outcome.PROVISIONED] * 30
    assert sorted(r.device_id for r in results) == [d.device_id for d in devices]
    assert log.cut >= 1 and max(connector.request_sizes) <= 7
    assert held(receiver) == [d.device_id for d in devices]


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the sizing is the target's, not the database's
def test_400_devices_through_a_gateway_that_cuts_at_29_s_with_default_settings(
        cli: Cli, tmp_path: Path, receiver: str, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    devices = [f"gw-{i:03d}" for i in range(400)]  # four chunks of 100, all in flight: one shared sizer
    make_world(cli, tmp_path, {"GW-1": devices})
    cli.ok("bind", "GW-1", "--user", ADMIN)
    log = GatewayLog()
    with serve(create_slow_gateway(receiver, log, seconds_per_cert=0.4, cut_at=29.0)) as gateway:
        cli.ok("cloud-api", "add", "gw", "--user", ADMIN, "--kind", "other", "--type", "AWS", "--credentials",
               "bindery:pw", "--url", f"{gateway}/interop")
        result = cli.ok("provision", "GW-1", "--cloud-api", "gw", "--user", ADMIN)
    assert "400 of 400 devices provisioned" in result.out
    assert log.cut == 0 and max(log.requests) * 0.4 < 29, log.requests
    sizes = re.search(r"requests sized to the target: (.+) certificates \((\d+) requests\)", result.out)
    assert sizes and sizes.group(1).startswith("5 -> "), result.out  # chunks in flight share one sizer
    assert int(sizes.group(2)) == len(log.requests) and max(log.requests) >= 15, "grown towards the budget"
    assert held(receiver) == devices
    assert db.scalar(settings.resolved_database_url,
                     "SELECT COUNT(*) FROM provisioning_record WHERE status = 'provisioned'") == 400
