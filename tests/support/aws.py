"""A real moto server on a loopback socket, with AWS-like certificate IDs (SHA-256 of the DER)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    from moto.core.config import default_user_config
    from moto.server import ThreadedMotoServer

    default_user_config["iot"] = {"use_valid_cert": True}
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The moto server, emptied, with fake credentials in the standard chain."""
    httpx.post(f"{moto_server}/moto-api/reset").raise_for_status()
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    return moto_server


def delete_behind_bindery(iot: Any, settings: Any, device_id: str, policy: str = "Fleet") -> None:
    """A provisioned device's certificate deleted in AWS IoT as an operator would, Bindery not told."""
    from tests.support import db

    certificate = str(db.scalar(settings.resolved_database_url,
                                "SELECT fingerprint_sha256 FROM device WHERE device_id = :d", d=device_id))
    arn = f"arn:aws:iot:us-east-1:123456789012:cert/{certificate}"
    iot.detach_thing_principal(thingName=device_id, principal=arn)
    iot.detach_policy(policyName=policy, target=arn)
    iot.update_certificate(certificateId=certificate, newStatus="INACTIVE")
    iot.delete_certificate(certificateId=certificate)
