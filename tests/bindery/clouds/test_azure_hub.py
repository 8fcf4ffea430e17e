"""The azure-iot-hub connector through the real SDK against a local HTTPS fake of the registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bindery.clouds.azure_hub import AzureHubConnector
from bindery.clouds.base import DeviceCert, Outcome, Permanent, Transient
from bindery.crypto.certs import fingerprint, pem_of
from tests.support.certs import Chain
from tests.support.iothub import Fault, Hub, running_hub
from tests.support.servers import dropping_server


def devices(count: int, tag: str) -> list[DeviceCert]:
    chain = Chain(tag)
    certs = [chain.device(f"{tag}-{i}") for i in range(count)]
    return [DeviceCert(f"{tag}-{i}", pem_of(c), fingerprint(c)) for i, c in enumerate(certs)]


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    with running_hub(tmp_path / "tls", monkeypatch) as state:
        yield state


def test_bulk_creates_with_sha256_thumbprints_in_calls_of_100(hub: Hub) -> None:
    connector = AzureHubConnector(hub.connection_string(), timeout=5, allow_private=True)
    connector.check()
    batch = devices(120, "hub")
    results = connector.provision(batch)
    assert [r.outcome for r in results] == [Outcome.PROVISIONED] * 120
    assert hub.calls.count("POST /devices") == 2
    stored = hub.devices["hub-7"]["authentication"]
    assert stored["type"] == "selfSigned"
    assert stored["x509Thumbprint"] == {"primaryThumbprint": batch[7].fingerprint_sha256.upper(),
                                        "secondaryThumbprint": batch[7].fingerprint_sha256.upper()}
    assert results[0].endpoint == hub.host


def test_existing_device_same_thumbprint_is_success_other_is_conflict(hub: Hub) -> None:
    connector = AzureHubConnector(hub.connection_string(), timeout=5, allow_private=True)
    batch = devices(3, "dup")
    connector.provision(batch[:2])
    impostor = devices(1, "imp")[0]
    clash = DeviceCert("dup-1", impostor.certificate_pem, impostor.fingerprint_sha256)
    results = connector.provision([batch[0], clash, batch[2]])
    assert [r.outcome for r in results] == [Outcome.ALREADY_PRESENT, Outcome.FAILED, Outcome.PROVISIONED]
    assert results[1].error_class == "permanent" and "another certificate thumbprint" in str(results[1].error)
    assert len(hub.devices) == 3


def test_wrong_shared_access_key_is_permanent(hub: Hub) -> None:
    import base64

    bad = AzureHubConnector(hub.connection_string(key=base64.b64encode(b"w" * 32).decode()), timeout=5,
                            allow_private=True)
    with pytest.raises(Permanent, match="HTTP 401"):
        bad.provision(devices(1, "bad"))
    assert hub.devices == {}


@pytest.mark.parametrize(("fault", "kind", "message", "retry_after"), [
    (Fault(429, b'{"Message": "throttled"}', {"Retry-After": "4"}), Transient, "HTTP 429", 4.0),
    (Fault(429, b'{"Message": "throttled"}'), Transient, "HTTP 429", None),
    (Fault(500, b'{"Message": "boom"}'), Transient, "HTTP 500", None),
    (Fault(503, b'{"Message": "busy"}'), Transient, "HTTP 503", None),
    (Fault(200, b"<html>proxy</html>"), Permanent, "malformed response", None),
    (Fault(200, b"{}", delay=2.0), Transient, "connection failed or timed out", None),
])
def test_faults_are_classified(hub: Hub, fault: Fault, kind: type, message: str, retry_after: float | None) -> None:
    hub.faults.append(fault)
    connector = AzureHubConnector(hub.connection_string(), timeout=0.5, allow_private=True)
    with pytest.raises(kind, match=message) as raised:
        connector.provision(devices(1, "fault"))
    assert raised.value.retry_after == retry_after


def test_dropped_connection_is_transient() -> None:
    with dropping_server() as port:
        connector = AzureHubConnector(f"HostName=127.0.0.1:{port};SharedAccessKeyName=p;SharedAccessKey=a2V5",
                                      timeout=2, allow_private=True)
        with pytest.raises(Transient, match="connection failed"):
            connector.provision(devices(1, "drop"))


def test_a_private_host_name_is_refused_before_any_call(hub: Hub) -> None:
    """The stored HostName is checked again when the connector starts (as every kind's target is)."""
    connector = AzureHubConnector(hub.connection_string(), timeout=5)
    with pytest.raises(Permanent, match=r"^the target's address: .* resolves to non-public address") as refused:
        connector.provision(devices(1, "priv"))
    assert "--" not in str(refused.value)
    with pytest.raises(Permanent, match="resolves to non-public address"):
        connector.check()
    assert hub.calls == []
