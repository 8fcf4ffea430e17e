"""Reference receiver: the receiving side of the interop protocol, a starting point for a custom
Product Cloud. Verifies the Bearer JWT (ES256, audience, lifetime) or HTTP Basic credentials,
stores what it receives in its own SQLite file, idempotent per certificate fingerprint."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

MAX_TOKEN_LIFETIME = 300
ENDPOINT = "mqtt.receiver.local:8883"


@dataclass(frozen=True)
class ReceiverAuth:
    public_keys: tuple[str, ...] = ()
    audience: str | None = None
    basic: str | None = None  # "user:password"


class Store:
    def __init__(self, path: Path, policy_applied: bool = True):
        self.policy_applied = policy_applied  # what it answers, like the vendor's: false when its policy is missing
        self.lock = threading.Lock()
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.execute("CREATE TABLE IF NOT EXISTS device (ref TEXT PRIMARY KEY, fingerprint TEXT UNIQUE NOT NULL,"
                        " certificate TEXT NOT NULL, received_at TEXT NOT NULL)")
        self.db.commit()

    def put(self, ref: str, pem: str, fingerprint: str) -> str | None:
        """Store once; the same certificate again is success; another certificate under a ref is an error."""
        with self.lock:
            row = self.db.execute("SELECT ref, fingerprint FROM device WHERE ref = ? OR fingerprint = ?",
                                  (ref, fingerprint)).fetchone()
            if row is not None:
                return None if row == (ref, fingerprint) else "ref or certificate already registered differently"
            self.db.execute("INSERT INTO device VALUES (?, ?, ?, ?)",
                            (ref, fingerprint, pem, datetime.now(UTC).isoformat()))
            self.db.commit()
            return None

    def devices(self) -> list[dict[str, str]]:
        with self.lock:
            rows = self.db.execute("SELECT ref, fingerprint FROM device ORDER BY ref").fetchall()
        return [{"ref": r, "fingerprint": f} for r, f in rows]


def _denied(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=401)


def authorize(header: str, auth: ReceiverAuth) -> str | None:
    """None when allowed, else why not."""
    if auth.basic is not None:
        if not header.startswith("Basic "):
            return "Basic credentials required"
        try:
            given = base64.b64decode(header[6:], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return "malformed Basic credentials"
        same = hmac.compare_digest(given.encode("utf-8"), auth.basic.encode("utf-8"))
        return None if same else "wrong username or password"
    if not header.startswith("Bearer "):
        return "Bearer token required"
    token = header[7:]
    for pem in auth.public_keys:
        key = serialization.load_pem_public_key(pem.encode())
        try:
            claims = jwt.decode(token, key, algorithms=["ES256"], audience=auth.audience,  # type: ignore[arg-type]
                                options={"require": ["exp", "iat", "aud"]}, leeway=5)
        except jwt.InvalidSignatureError:
            continue
        except jwt.InvalidAudienceError:
            return "token audience does not match this receiver"
        except jwt.ExpiredSignatureError:
            return "token has expired"
        except jwt.PyJWTError as exc:
            return f"invalid token ({exc.__class__.__name__})"
        if int(claims["exp"]) - int(claims["iat"]) > MAX_TOKEN_LIFETIME:
            return "token lives longer than 5 minutes"
        return None
    return "token is not signed by a trusted key"


def _receive(item: Any, store: Store) -> dict[str, Any]:
    ref = str(item.get("ref", "")) if isinstance(item, dict) else ""
    if not ref:
        return {"ref": ref, "status": "ERROR", "message": "missing ref"}
    try:
        pem = base64.b64decode(str(item.get("cert", "")), validate=True).decode("ascii")
        cert = x509.load_pem_x509_certificate(pem.encode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return {"ref": ref, "status": "ERROR", "message": "cert is not base64 of a PEM certificate"}
    fingerprint = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    problem = store.put(ref, pem, fingerprint)
    if problem:
        return {"ref": ref, "status": "ERROR", "message": problem}
    return {"ref": ref, "status": "SUCCESS", "endpoint": ENDPOINT, "topic": f"devices/{ref}",
            "policyApplied": store.policy_applied}


def create_app(auth: ReceiverAuth, db_path: Path, policy_applied: bool = True) -> FastAPI:
    app = FastAPI(title="Bindery reference receiver", version="1")
    store = Store(db_path, policy_applied)

    @app.post("/", response_model=None)
    @app.post("/interop", response_model=None)
    async def interop(request: Request) -> Any:
        problem = authorize(request.headers.get("Authorization", ""), auth)
        if problem:
            return _denied(problem)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        action = body.get("action") if isinstance(body, dict) else None
        if action == "info":
            return {"action": "info", "compatibilityVersion": 1}
        if action != "provision" or not isinstance(body.get("certs"), list):
            return JSONResponse({"error": "expected action info or provision with a certs array"}, status_code=400)
        return [_receive(item, store) for item in body["certs"]]

    @app.get("/devices")
    async def devices() -> list[dict[str, str]]:
        return store.devices()

    return app
