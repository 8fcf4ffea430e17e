"""The azure-dps connector against the local HTTPS stand-in of the DPS service API (tests/support/dps.py)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from bindery.clouds.azure_dps import AzureDpsConnector, registration_id
from bindery.clouds.azure_dps_api import BadConnectionString, parse_connection_string, sas_token
from bindery.clouds.base import DeviceCert, DeviceKey, Outcome, Permanent, ProvisionedDevice, Transient
from bindery.crypto.certs import fingerprint, pem_of
from bindery.provisioning.ratelimit import TokenBucket
from tests.support.certs import Chain
from tests.support.dps import HOST, Dps, Fault, running_dps, signature_ok
from tests.support.servers import dropping_server


def devices(count: int, tag: str, cn: str = "{tag}-{i}") -> list[DeviceCert]:
    chain = Chain(tag)
    certs = [chain.device(cn.format(tag=tag, i=i)) for i in range(count)]
    return [DeviceCert(f"dev-{tag}-{i}", pem_of(c), fingerprint(c)) for i, c in enumerate(certs)]


@pytest.fixture
def dps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Dps, str]]:
    with running_dps(tmp_path / "tls") as (state, url):
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "tls" / "ca.pem"))
        yield state, url


def connect(dps: tuple[Dps, str], timeout: float = 5, **options: str) -> AzureDpsConnector:
    state, url = dps
    return AzureDpsConnector(state.connection_string(), {"endpoint_url": url, **options}, timeout=timeout)


def test_sas_token_is_the_documented_signature() -> None:
    connection = parse_connection_string(f"HostName={HOST};SharedAccessKeyName=provisioningserviceowner;"
                                         f"SharedAccessKey={base64.b64encode(b'k' * 32).decode()}")
    token = sas_token(connection, 1_900_000_000)
    assert token.startswith(f"SharedAccessSignature sr={HOST}&sig=")
    assert token.endswith("&se=1900000000&skn=provisioningserviceowner")
    assert signature_ok(token, Dps(key=base64.b64encode(b"k" * 32).decode()))
    assert not signature_ok(token, Dps(key=base64.b64encode(b"x" * 32).decode()))
    assert "kkkk" not in repr(connection) and "a2tr" not in repr(connection)


@pytest.mark.parametrize(("text", "says"), [
    ("HostName=x.azure-devices-provisioning.net;SharedAccessKeyName=p", "missing SharedAccessKey"),
    ("HostName=hub.azure-devices.net;SharedAccessKeyName=p;SharedAccessKey=a2V5", "is an IoT Hub"),
    ("HostName=x.azure-devices-provisioning.net;SharedAccessKeyName=p;SharedAccessKey=not base64!", "not base64"),
    ("HostName=x.net;DeviceId=d;SharedAccessKeyName=p;SharedAccessKey=a2V5", "device's connection string"),
    ("HostName=https://x/;SharedAccessKeyName=p;SharedAccessKey=a2V5", "not a host name"),
])
def test_bad_connection_strings_say_why_without_the_key(text: str, says: str) -> None:
    with pytest.raises(BadConnectionString, match=says) as raised:
        parse_connection_string(text)
    assert "a2V5" not in str(raised.value) and "not base64!" not in str(raised.value)


def test_registration_id_is_the_subject_cn_or_a_permanent_reason() -> None:
    chain = Chain("cn")
    assert registration_id(pem_of(chain.device("sn0123ABCD:e0.f_1-x"))) == "sn0123ABCD:e0.f_1-x"
    for bad in ("has space", "-leading", "trailing.", "slash/no", "ümlaut"):
        with pytest.raises(Permanent, match="cannot be a DPS registration id"):
            registration_id(pem_of(chain.device(bad)))


def test_bulk_creates_in_tens_with_x509_enrollments(dps: tuple[Dps, str]) -> None:
    state, _url = dps
    connector = connect(dps, iot_hub="hub1.azure-devices.net", allocation="geolatency")
    connector.check()
    batch = devices(23, "dps")
    results = connector.provision(batch)
    assert [r.outcome for r in results] == [Outcome.PROVISIONED] * 23
    assert state.calls.count("POST /enrollments") == 3
    assert results[4].external_ref == "dps-4" and results[4].endpoint == "hub1.azure-devices.net"
    stored = state.enrollments["dps-4"]
    info = stored["attestation"]["x509"]["clientCertificates"]["primary"]["info"]
    assert info["sha256Thumbprint"].lower() == batch[4].fingerprint_sha256
    assert (stored["provisioningStatus"], stored["iotHubHostName"], stored["allocationPolicy"]) == (
        "enabled", "hub1.azure-devices.net", "geoLatency")


def test_existing_id_is_read_back_same_certificate_success_other_conflict(dps: tuple[Dps, str]) -> None:
    state, _url = dps
    connector = connect(dps)
    batch = devices(3, "dup")
    connector.provision(batch[:2])
    impostor = devices(1, "imp", cn="dup-1")[0]
    results = connector.provision([batch[0], impostor, batch[2]])
    assert [r.outcome for r in results] == [Outcome.ALREADY_PRESENT, Outcome.FAILED, Outcome.PROVISIONED]
    assert results[1].error_class == "permanent" and "another certificate" in str(results[1].error)
    assert thumb(state, "dup-1") == batch[1].fingerprint_sha256  # never overwritten
    assert state.calls.count("GET /enrollments/dup-0") == 1


def thumb(state: Dps, registration: str) -> str:
    info = state.enrollments[registration]["attestation"]["x509"]["clientCertificates"]["primary"]["info"]
    return str(info["sha256Thumbprint"]).lower()


def test_a_cn_dps_cannot_take_fails_that_device_only(dps: tuple[Dps, str]) -> None:
    state, _url = dps
    good = devices(2, "ok")
    bad = devices(1, "bad", cn="bad cn with spaces")
    results = connect(dps).provision([good[0], *bad, good[1]])
    assert [r.outcome for r in results] == [Outcome.PROVISIONED, Outcome.FAILED, Outcome.PROVISIONED]
    assert results[1].error_class == "permanent" and "'bad cn with spaces' cannot be a DPS registration id" in str(
        results[1].error)
    assert sorted(state.enrollments) == ["ok-0", "ok-1"]


def test_two_devices_with_one_cn_go_in_separate_calls_and_the_second_is_a_conflict(dps: tuple[Dps, str]) -> None:
    state, _url = dps
    one, two = devices(1, "twin", cn="twin"), devices(1, "twin2", cn="twin")
    results = connect(dps).provision([*one, *two])
    assert [r.outcome for r in results] == [Outcome.PROVISIONED, Outcome.FAILED]
    assert state.calls.count("POST /enrollments") == 2


def test_wrong_key_is_one_permanent_line_and_nothing_is_enrolled(dps: tuple[Dps, str]) -> None:
    state, url = dps
    wrong = AzureDpsConnector(state.connection_string(key=base64.b64encode(b"w" * 32).decode()),
                              {"endpoint_url": url}, timeout=5)
    with pytest.raises(Permanent, match=r"refused \(401\): wrong key or policy"):
        wrong.check()
    with pytest.raises(Permanent, match="401"):
        wrong.provision(devices(1, "nokey"))
    assert state.enrollments == {}


@pytest.mark.parametrize(("fault", "retry_after"), [
    (Fault(500), None), (Fault(503, headers={"Retry-After": "3"}), 3.0), (Fault(drop="before"), None),
])
def test_server_errors_and_dropped_connections_are_transient(dps: tuple[Dps, str], fault: Fault,
                                                             retry_after: float | None) -> None:
    state, _url = dps
    state.faults.append(fault)
    with pytest.raises(Transient) as raised:
        connect(dps).provision(devices(2, "fault"))
    assert raised.value.retry_after == retry_after
    assert state.enrollments == {}


def test_an_answer_lost_after_the_work_is_retried_and_read_back(dps: tuple[Dps, str]) -> None:
    state, _url = dps
    state.faults.append(Fault(drop="after"))
    batch = devices(3, "lost")
    connector = connect(dps)
    with pytest.raises(Transient, match=r"connection to .* failed"):
        connector.provision(batch)
    assert len(state.enrollments) == 3  # DPS did the work; the answer never came
    assert [r.outcome for r in connector.provision(batch)] == [Outcome.ALREADY_PRESENT] * 3


def test_a_timeout_is_transient(dps: tuple[Dps, str]) -> None:
    state, _url = dps
    state.faults.append(Fault(200, delay=1.5))
    with pytest.raises(Transient, match="timed out"):
        connect(dps, timeout=0.5).provision(devices(1, "slow"))


def test_transient_failure_after_some_answers_keeps_what_dps_confirmed(dps: tuple[Dps, str]) -> None:
    state, _url = dps
    state.faults.extend([None, Fault(503)])  # one of the two bulk calls is answered, the other is not
    answered: list[str] = []
    results = connect(dps).provision(devices(15, "half"), confirmed=lambda rs: answered.extend(r.device_id for r in rs))
    done = [r.device_id for r in results if r.outcome is Outcome.PROVISIONED]
    assert len(done) in (5, 10) and sorted(answered) == sorted(done) and len(state.enrollments) == len(done)
    assert {r.error_class for r in results if r.device_id not in done} == {"transient"}


def test_throttling_waits_for_retry_after_and_slows_the_pace(dps: tuple[Dps, str]) -> None:
    state, _url = dps
    state.faults.append(Fault(429, headers={"Retry-After": "1"}))
    pacer = TokenBucket(1000.0)
    connector = connect(dps)
    connector.pace(pacer)
    results = connector.provision(devices(2, "slow"))
    assert [r.outcome for r in results] == [Outcome.PROVISIONED] * 2
    assert state.calls.count("POST /enrollments") == 2
    assert pacer.current_rate() < 1000.0
    assert pacer.paused_until > 0


def test_the_stand_in_throttles_above_its_quota_with_retry_after(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with running_dps(tmp_path / "tls", per_minute=60, window=2.0) as (state, url):  # 2 operations in 2 s
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "tls" / "ca.pem"))
        connector = AzureDpsConnector(state.connection_string(), {"endpoint_url": url}, timeout=5)
        results = connector.provision(devices(30, "quota"))
    assert [r.outcome for r in results] == [Outcome.PROVISIONED] * 30
    assert state.throttled >= 1 and state.calls.count("POST /enrollments") == 3 + state.throttled


def test_deprovision_deletes_in_bulk_counts_gone_as_removed_and_keeps_another_certificate(
        dps: tuple[Dps, str]) -> None:
    state, _url = dps
    connector = connect(dps)
    batch = devices(12, "rm")
    connector.provision(batch)
    del state.enrollments["rm-3"]  # gone behind Bindery's back
    impostor = devices(1, "other", cn="rm-5")[0]
    state.enrollments["rm-5"] = state.enroll({"registrationId": "rm-5", "attestation": {"type": "x509", "x509": {
        "clientCertificates": {"primary": {"certificate": impostor.certificate_pem}}}}})[0]  # type: ignore[assignment]
    state.calls.clear()
    results = connector.deprovision([ProvisionedDevice(d.device_id, d.fingerprint_sha256, f"rm-{i}")
                                     for i, d in enumerate(batch)])
    assert [r.ok for r in results] == [True] * 5 + [False] + [True] * 6
    assert "holds another certificate: not deleted" in str(results[5].error)
    assert list(state.enrollments) == ["rm-5"]
    assert state.calls.count("POST /enrollments") == 1  # ten deleted in one bulk call


def test_inventory_pages_through_the_enrollments(dps: tuple[Dps, str]) -> None:
    state, _url = dps
    connector = connect(dps)
    batch = devices(230, "inv")
    connector.provision(batch)
    state.enrollments["inv-7"]["provisioningStatus"] = "disabled"
    state.calls.clear()
    keys = [DeviceKey(d.device_id, d.fingerprint_sha256, subject_cn=f"inv-{i}") for i, d in enumerate(batch)]
    held = connector.inventory([*keys, DeviceKey("absent", "00", subject_cn="absent")])
    assert held is not None and len(held) == 230 and "absent" not in held
    assert state.calls.count("POST /enrollments/query") == 3
    assert held["dev-inv-7"].enabled is False and held["dev-inv-8"].enabled is True
    assert held["dev-inv-8"].fingerprint_sha256 == batch[8].fingerprint_sha256
    assert held["dev-inv-8"].external_ref == "inv-8"


def test_dropped_connection_before_any_answer_is_transient() -> None:
    with dropping_server() as port:
        connector = AzureDpsConnector(f"HostName={HOST};SharedAccessKeyName=p;SharedAccessKey=a2V5",
                                      {"endpoint_url": f"https://127.0.0.1:{port}"}, timeout=2)
        with pytest.raises(Transient, match=r"connection to .* failed"):
            connector.provision(devices(1, "drop"))
