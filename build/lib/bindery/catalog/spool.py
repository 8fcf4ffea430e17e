"""Chunked on-disk spool between the read, verify and store steps (flat memory for big reels)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from bindery.crypto.certs import CertificateFacts
from bindery.reels.base import RawEntry


class ChunkWriter:
    """Writes JSON lines, starting a new file every ``chunk_size`` records."""

    def __init__(self, folder: Path, prefix: str, chunk_size: int):
        self.folder, self.prefix, self.chunk_size = folder, prefix, chunk_size
        self.paths: list[Path] = []
        self.count = 0
        self._handle: IO[str] | None = None

    def write(self, record: dict[str, Any]) -> None:
        if self._handle is None or self.count % self.chunk_size == 0:
            self._roll()
        assert self._handle is not None
        self._handle.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.count += 1

    def _roll(self) -> None:
        if self._handle:
            self._handle.close()
        path = self.folder / f"{self.prefix}-{len(self.paths):05d}.jsonl"
        self.paths.append(path)
        self._handle = path.open("w", encoding="utf-8")

    def close(self) -> list[Path]:
        if self._handle:
            self._handle.close()
            self._handle = None
        return self.paths


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            yield json.loads(line)


def raw_to_record(entry: RawEntry) -> dict[str, Any]:
    return {
        "ref": entry.ref, "device_id": entry.device_id, "group_id": entry.group_id,
        "cert": base64.b64encode(entry.cert).decode() if entry.cert is not None else None,
        "chain": [base64.b64encode(c).decode() for c in entry.chain], "jws": entry.jws,
        "problem": entry.problem,
    }


def raw_from_record(record: dict[str, Any]) -> RawEntry:
    return RawEntry(
        ref=record["ref"], device_id=record["device_id"], group_id=record["group_id"],
        cert=base64.b64decode(record["cert"]) if record["cert"] is not None else None,
        chain=[base64.b64decode(c) for c in record["chain"]], jws=record["jws"], problem=record["problem"],
    )


def facts_to_record(ref: str, device_id: str, facts: CertificateFacts) -> dict[str, Any]:
    return {
        "ref": ref, "device_id": device_id, "pem": facts.pem, "fingerprint_sha256": facts.fingerprint_sha256,
        "subject_cn": facts.subject_cn, "serial_hex": facts.serial_hex, "issuer": facts.issuer,
        "key_type": facts.key_type, "not_before": facts.not_before.isoformat(),
        "not_after": facts.not_after.isoformat(),
    }


def device_row_from_record(record: dict[str, Any], batch_id: int) -> dict[str, Any]:
    return {
        "batch_id": batch_id, "device_id": record["device_id"], "certificate_pem": record["pem"],
        "fingerprint_sha256": record["fingerprint_sha256"], "subject_cn": record["subject_cn"],
        "serial_hex": record["serial_hex"], "issuer": record["issuer"], "key_type": record["key_type"],
        "not_before": datetime.fromisoformat(record["not_before"]),
        "not_after": datetime.fromisoformat(record["not_after"]),
    }
