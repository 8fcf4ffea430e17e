"""Microchip Trust&GO / TrustFLEX manifests: a JSON array of JWS entries (general JSON form).

The reader streams entries (ijson) and only peeks at the still-unverified payload for the BID and
part number; the verifier checks each signature and takes the certificate from the signed payload.
"""

from __future__ import annotations

import json
from typing import Any

import ijson

from bindery.crypto.certs import CertificateError, b64url_decode
from bindery.errors import BadInput
from bindery.reels.base import RawEntry, ReadRequest, ReelHeader, Sink
from bindery.reels.textfiles import open_binary

JWS_FIELDS = ("protected", "payload", "signature")


def peek_payload(entry: dict[str, Any]) -> dict[str, Any]:
    try:
        payload = json.loads(b64url_decode(str(entry.get("payload", ""))))
    except (ValueError, CertificateError):
        return {}
    return payload if isinstance(payload, dict) else {}


def read_microchip(request: ReadRequest, sink: Sink) -> ReelHeader:
    source = request.path.name
    header = ReelHeader(format="microchip", vendor="microchip")
    try:
        with open_binary(request.path) as handle:
            for number, item in enumerate(ijson.items(handle, "item"), start=1):
                ref = f"entry {number}"
                if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in JWS_FIELDS):
                    sink(RawEntry(ref, problem="entry is not a JWS (protected, payload, signature)"))
                    continue
                unprotected = item.get("header")
                if not isinstance(unprotected, dict):
                    unprotected = {}
                unique_id = str(unprotected.get("uniqueId") or "") or None
                payload = peek_payload(item)
                group = payload.get("groupId")
                if header.model is None and payload.get("partNumber"):
                    header.model = str(payload["partNumber"])
                if header.bid is None and group is not None:
                    header.bid = str(group)
                jws = {k: item[k] for k in JWS_FIELDS}
                sink(RawEntry(ref, device_id=unique_id, group_id=None if group is None else str(group), jws=jws))
    except ijson.JSONError as exc:
        raise BadInput(f"{source}: malformed JSON manifest ({_parser_message(exc)})") from None
    except (EOFError, OSError) as exc:
        raise BadInput(f"{source}: cannot read manifest ({exc.__class__.__name__})") from None
    return header


def _parser_message(exc: Exception) -> str:
    """yajl's message (sometimes bytes, with the offending text drawn under it) as one short line."""
    text = exc.args[0] if exc.args else ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return (str(text).strip().splitlines() or [exc.__class__.__name__])[0][:100]
