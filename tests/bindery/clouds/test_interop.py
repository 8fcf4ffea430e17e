"""The interop connector against the reference receiver over real sockets, JWT and Basic, and faults."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from sqlmodel import Session

from bindery import db as database
from bindery.clouds.base import DeviceCert, Outcome, Permanent, Transient
from bindery.clouds.interop import InteropConnector, basic, bearer
from bindery.clouds.tokens import Signer, signing_key
from bindery.crypto.certs import fingerprint, pem_of
from bindery.receiver import ReceiverAuth, create_app
from bindery.settings import Settings
from tests.support.certs import Chain
from tests.support.servers import dropping_server, serve

AUDIENCE = "123456789012"


def devices(count: int, tag: str = "dev") -> list[DeviceCert]:
    chain = Chain(tag)
    certs = [chain.device(f"{tag}-{i}") for i in range(count)]
    return [DeviceCert(f"{tag}-{i}", pem_of(c), fingerprint(c)) for i, c in enumerate(certs)]


@pytest.fixture
def signer(settings: Settings) -> Signer:
    with Session(database.get_engine(settings)) as session:
        key = signing_key(session=session, settings=settings)
        session.commit()
    return key


@pytest.fixture
def jwt_receiver(signer: Signer, tmp_path: Path) -> Iterator[str]:
    app = create_app(ReceiverAuth(public_keys=(signer.public_pem,), audience=AUDIENCE), tmp_path / "recv.db")
    with serve(app) as url:
        yield url


def connector(url: str, auth: object, timeout: float = 5.0) -> InteropConnector:
    return InteropConnector(url + "/interop", auth, timeout=timeout, allow_private=True)  # type: ignore[arg-type]


def test_jwt_provisioning_is_idempotent_per_certificate(jwt_receiver: str, signer: Signer) -> None:
    target = connector(jwt_receiver, bearer(lambda: signer.token(AUDIENCE)))
    target.check()
    batch = devices(3)
    first = target.provision(batch)
    assert [r.outcome for r in first] == [Outcome.PROVISIONED] * 3
    assert first[0].endpoint == "mqtt.receiver.local:8883" and first[0].external_ref == "dev-0"
    again = target.provision(batch)
    assert all(r.ok for r in again)
    held = httpx.get(jwt_receiver + "/devices").json()
    assert sorted((d["ref"], d["fingerprint"]) for d in held) == sorted((d.device_id, d.fingerprint_sha256)
                                                                       for d in batch)


def test_receiver_reports_a_per_device_error(jwt_receiver: str, signer: Signer) -> None:
    target = connector(jwt_receiver, bearer(lambda: signer.token(AUDIENCE)))
    good, other = devices(1, "a")[0], devices(1, "b")[0]
    target.provision([good])
    clash = DeviceCert(good.device_id, other.certificate_pem, other.fingerprint_sha256)
    results = target.provision([clash])
    assert results[0].outcome is Outcome.FAILED and results[0].error_class == "permanent"
    assert "already registered differently" in str(results[0].error)


@pytest.mark.parametrize(("make_token", "message"), [
    (lambda s, o: o.token(AUDIENCE), "not signed by a trusted key"),
    (lambda s, o: s.token("999999999999"), "audience does not match"),
    (lambda s, o: s.token(AUDIENCE, now=time.time() - 3600), "token has expired"),
    (lambda s, o: s.token(AUDIENCE, lifetime=3600), "longer than 5 minutes"),
])
def test_bad_tokens_are_refused_as_permanent(jwt_receiver: str, signer: Signer, settings: Settings,
                                             tmp_path: Path, make_token: object, message: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    other = Signer("other", ec.generate_private_key(ec.SECP256R1()), "")
    target = connector(jwt_receiver, bearer(lambda: make_token(signer, other)))  # type: ignore[operator]
    with pytest.raises(Permanent, match=message):
        target.provision(devices(1))
    assert httpx.get(jwt_receiver + "/devices").json() == []


def test_basic_auth_right_and_wrong_password(tmp_path: Path) -> None:
    app = create_app(ReceiverAuth(basic="bindery:s3cret"), tmp_path / "basic.db")
    with serve(app) as url:
        connector(url, basic("bindery:s3cret")).check()
        assert connector(url, basic("bindery:s3cret")).provision(devices(2))[1].ok
        with pytest.raises(Permanent, match="wrong username or password"):
            connector(url, basic("bindery:wrong")).provision(devices(1))


def fault_app() -> FastAPI:
    app = FastAPI()

    @app.post("/interop/429-after")
    async def throttled_after() -> Response:
        return JSONResponse({"error": "slow down"}, status_code=429, headers={"Retry-After": "7"})

    @app.post("/interop/429")
    async def throttled() -> Response:
        return JSONResponse({"error": "slow down"}, status_code=429)

    @app.post("/interop/500")
    async def broken() -> Response:
        return JSONResponse({"error": "boom"}, status_code=500)

    @app.post("/interop/503")
    async def unavailable() -> Response:
        return Response("unavailable", status_code=503, headers={"Retry-After": "2"})

    @app.post("/interop/slow")
    async def slow() -> Response:
        import asyncio

        await asyncio.sleep(2)
        return JSONResponse([])

    @app.post("/interop/html")
    async def html() -> Response:
        return Response("<html>proxy</html>", media_type="text/html")

    @app.post("/interop/object")
    async def wrong_shape() -> Response:
        return JSONResponse({"ok": True})

    @app.post("/interop/400")
    async def bad_request() -> Response:
        return JSONResponse({"error": "certs missing"}, status_code=400)

    return app


@pytest.mark.parametrize(("path", "kind", "message", "retry_after"), [
    ("429-after", Transient, "throttled by the receiver (429): slow down", 7.0),
    ("429", Transient, "throttled", None),
    ("500", Transient, "receiver error 500: boom", None),
    ("503", Transient, "receiver error 503", 2.0),
    ("slow", Transient, "timeout talking to", None),
    ("html", Permanent, "malformed response: not JSON", None),
    ("object", Permanent, "malformed response: expected a JSON array", None),
    ("400", Permanent, "refused by the receiver (400): certs missing", None),
])
def test_faults_are_classified(path: str, kind: type, message: str, retry_after: float | None) -> None:
    with serve(fault_app()) as url:
        target = InteropConnector(f"{url}/interop/{path}", basic("u:p"), timeout=0.5, allow_private=True)
        with pytest.raises(kind, match=message.replace("(", r"\(").replace(")", r"\)")) as raised:
            target.provision(devices(1))
        assert raised.value.retry_after == retry_after


def test_dropped_connection_is_transient() -> None:
    with dropping_server() as port:
        target = InteropConnector(f"http://127.0.0.1:{port}/interop", basic("u:p"), timeout=2, allow_private=True)
        with pytest.raises(Transient, match=r"connection to .* failed"):
            target.provision(devices(1))


def test_private_targets_are_refused_unless_allowed() -> None:
    target = InteropConnector("http://127.0.0.1:9/interop", basic("u:p"), timeout=1, allow_private=False)
    with pytest.raises(Permanent) as refused:
        target.check()
    # the words of the provisioning record every surface shows (never the CLI's --url or its env fix)
    assert str(refused.value) == ("the target's address: 127.0.0.1 resolves to non-public address 127.0.0.1; "
                                  "private addresses are refused unless the server's administrator allows "
                                  "on-premise targets")
