"""Import throughput: Bindery's full import of a dummy reel vs a bare cryptography verify loop.

Run: bench/import [--devices N] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from cryptography import x509
from sqlalchemy import text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BINDERY_HOME"] = str(Path(tmp) / "home")
        if args.database_url:
            os.environ["BINDERY_DATABASE_URL"] = args.database_url
        from bindery import audit, db
        from bindery.catalog.importer import import_reel
        from bindery.catalog.trust import add_anchors
        from bindery.reels.demo import write_demo_reel
        from bindery.settings import get_settings

        settings = get_settings()
        db.upgrade(settings)
        started = time.perf_counter()
        demo = write_demo_reel(out=Path(tmp) / "reel", bid=f"BENCH-{os.getpid()}", devices=args.devices,
                               public_url=settings.public_url)
        print(f"dummy reel: {args.devices} devices written in {time.perf_counter() - started:.1f} s")
        with db.session_scope(settings) as session:
            add_anchors(session=session, paths=demo.ca_files, actor=audit.operator_name())

        stages: dict[str, float] = {}
        clock = {"stage": "", "at": time.perf_counter()}

        def progress(stage: str, _done: int, _total: int) -> None:
            now = time.perf_counter()
            if stage != clock["stage"]:
                if clock["stage"]:
                    stages[str(clock["stage"])] = now - float(clock["at"])
                clock.update(stage=stage, at=now)

        started = time.perf_counter()
        report = import_reel(settings=settings, path=demo.reel, progress=progress)
        bindery_s = time.perf_counter() - started
        stages[str(clock["stage"])] = time.perf_counter() - float(clock["at"])
        assert report.imported == args.devices, report

        with db.get_engine(settings).connect() as connection:
            pems = [row[0].encode() for row in connection.execute(
                text("SELECT certificate_pem FROM device JOIN batch ON batch.id = device.batch_id "
                     "WHERE batch.bid = :bid"), {"bid": report.bid})]
        issuer = x509.load_pem_x509_certificate(demo.ca_files[1].read_bytes())
        started = time.perf_counter()
        for pem in pems:
            x509.load_pem_x509_certificate(pem).verify_directly_issued_by(issuer)
        bare_s = time.perf_counter() - started

        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        backend = db.redact_url(settings.resolved_database_url).split(":")[0]
        print(f"database: {backend}, verify worker processes: {settings.verify_workers}")
        print(f"bindery import (read 7z + verify chains + duplicate checks + store): "
              f"{bindery_s:.2f} s, {args.devices / bindery_s:,.0f} devices/s")
        print(f"bare cryptography loop (parse PEM + verify signature, one thread): "
              f"{bare_s:.2f} s, {len(pems) / bare_s:,.0f} devices/s")
        print("bindery stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in stages.items()))
        print(f"ratio bindery/bare: {bare_s / bindery_s:.2f}")
        print(f"peak RSS: {rss_mb:.0f} MB")
        db.get_engine(settings).dispose()


if __name__ == "__main__":
    main()
