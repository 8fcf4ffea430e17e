"""Manifest export: Bindery's chunked export of a 100,000-device batch vs a bare DataFrame.to_csv
of the same rows already in memory. Each side runs in its own process, so peak RSS is its own.

The batch is filled by SQL with one real certificate PEM per row (unique device ids and synthetic
fingerprints): this measures export, not verification.

Run: bench/manifest [--devices N] [--database-url URL]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BID, ADMIN = "BENCH-M", "admin@bench.local"


def prepare(devices: int) -> None:
    from sqlalchemy import insert

    from bindery import accounts, audit, binding, db
    from bindery.access import actor_for
    from bindery.crypto.certs import facts
    from bindery.models.catalog import Batch, Device
    from bindery.reels.demo import DemoCA
    from bindery.settings import get_settings

    settings = get_settings()
    db.upgrade(settings)
    sample = facts(DemoCA.create().device("bench"))
    with db.session_scope(settings) as session:
        batch = Batch(bid=BID, vendor="bench", device_count=devices, source_format="bench", source_name="bench",
                      source_sha256="0" * 64)
        session.add(batch)
        session.flush()
        for start in range(0, devices, 10_000):
            session.execute(insert(Device), [{
                "batch_id": batch.id, "device_id": f"D{i:08d}", "certificate_pem": sample.pem,
                "fingerprint_sha256": f"{i:064x}", "subject_cn": f"D{i:08d}", "serial_hex": f"{i:x}",
                "issuer": sample.issuer, "key_type": sample.key_type, "not_before": sample.not_before,
                "not_after": sample.not_after} for i in range(start, min(start + 10_000, devices))])
        accounts.create_account(session=session, name="Bench", actor=audit.operator_name())
        session.flush()
        accounts.add_user(session=session, email=ADMIN, account="Bench", role="admin", actor=audit.operator_name())
    with db.session_scope(settings) as session:
        binding.bind(session=session, actor=actor_for(session=session, email=ADMIN), bid=BID)


def run_export(out: str) -> dict[str, float]:
    from bindery import db, manifest
    from bindery.access import actor_for
    from bindery.settings import get_settings

    settings = get_settings()
    started = time.perf_counter()
    with db.session_scope(settings) as session:
        report = manifest.export_manifest(session=session, actor=actor_for(session=session, email=ADMIN), bid=BID,
                                          out=out, chunk_size=settings.manifest_chunk_size)
    return {"seconds": time.perf_counter() - started, "rows": report.rows}


def run_bare(out: str) -> dict[str, float]:
    import pandas as pd
    from sqlalchemy import text

    from bindery import db
    from bindery.settings import get_settings

    with db.get_engine(get_settings()).connect() as connection:
        rows = connection.execute(text("SELECT device_id, certificate_pem FROM device ORDER BY device_id")).all()
    frame = pd.DataFrame({"device_id": [r[0] for r in rows], "group_id": BID, "certificate": [r[1] for r in rows]})
    del rows
    started = time.perf_counter()
    frame.to_csv(out, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    return {"seconds": time.perf_counter() - started, "rows": len(frame)}


def child(role: str, out: str) -> dict[str, float]:
    result = subprocess.run([sys.executable, __file__, "--role", role, "--out", out], check=True,
                            capture_output=True, text=True, env=os.environ)
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--role", choices=["export", "bare"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        result = run_export(args.out) if args.role == "export" else run_bare(args.out)
        # VmHWM: this image's own peak (a child's ru_maxrss also counts its parent's image before exec)
        status = Path("/proc/self/status").read_text()
        result["peak_rss_mb"] = next(int(line.split()[1]) for line in status.splitlines()
                                     if line.startswith("VmHWM")) / 1024
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BINDERY_HOME"] = str(Path(tmp) / "home")
        if args.database_url:
            os.environ["BINDERY_DATABASE_URL"] = args.database_url
        started = time.perf_counter()
        prepare(args.devices)
        print(f"batch of {args.devices} devices prepared in {time.perf_counter() - started:.1f} s")
        exported = child("export", str(Path(tmp) / "export.csv"))
        bare = child("bare", str(Path(tmp) / "bare.csv"))
        same = (Path(tmp) / "export.csv").read_bytes() == (Path(tmp) / "bare.csv").read_bytes()
        print(f"bindery manifest (chunked from the database): {exported['seconds']:.2f} s, "
              f"{exported['rows'] / exported['seconds']:,.0f} rows/s, peak RSS {exported['peak_rss_mb']:.0f} MB")
        print(f"bare DataFrame.to_csv (rows already in memory): {bare['seconds']:.2f} s, "
              f"{bare['rows'] / bare['seconds']:,.0f} rows/s, peak RSS {bare['peak_rss_mb']:.0f} MB")
        print(f"ratio bindery/bare time: {exported['seconds'] / bare['seconds']:.2f}; "
              f"RSS ratio {exported['peak_rss_mb'] / bare['peak_rss_mb']:.2f}; identical files: {same}")
        if args.database_url:
            from bindery import db

            db.get_engine().dispose()


if __name__ == "__main__":
    main()
