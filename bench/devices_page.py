"""The device listing at 100,000 records: the first page of `GET /api/batches/{bid}/devices` (and of the
console's batch page, failed first) against the baselines a naive listing would be — the same page by
OFFSET deep into the batch, and loading every record to cut a page in Python. SQLite and PostgreSQL.

The batch is filled by SQL (one real PEM per row, synthetic fingerprints), 1 % of its records failed.

Run: bench/devices [--devices N] [--skip-postgresql]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench.manifest_export import ADMIN, BID, prepare

PG_ADMIN = os.environ.get("BINDERY_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def add_records() -> None:
    """One interop target of the account and a record per device: 99 % provisioned, every 100th failed."""
    from sqlalchemy import insert, select

    from bindery import db
    from bindery.models.accounts import Account
    from bindery.models.catalog import Batch, Device
    from bindery.models.clouds import CloudApi
    from bindery.models.provisioning import ProvisioningRecord
    from bindery.models.types import utcnow
    from bindery.settings import get_settings

    with db.session_scope(get_settings()) as session:
        account = session.exec(select(Account.id).where(Account.name == "Bench")).scalar_one()  # type: ignore[attr-defined]
        batch = session.exec(select(Batch.id).where(Batch.bid == BID)).scalar_one()  # type: ignore[attr-defined]
        api = CloudApi(name="lab", kind="other", account_id=account, settings_json="{}", created_by=ADMIN)
        session.add(api)
        session.flush()
        pks = [row[0] for row in session.execute(select(Device.id).where(Device.batch_id == batch)
                                                 .order_by(Device.id)).all()]
        now = utcnow()
        for start in range(0, len(pks), 10_000):
            session.execute(insert(ProvisioningRecord), [{
                "device_id": pk, "batch_id": batch, "cloud_api_id": api.id, "attempts": 1,
                "status": "failed" if i % 100 == 7 else "provisioned",
                "last_error": "ref or certificate already registered differently" if i % 100 == 7 else None,
                "error_class": "permanent" if i % 100 == 7 else None, "external_ref": f"ref-{pk}",
                "provisioned_at": None if i % 100 == 7 else now, "last_attempt_at": now}
                for i, pk in enumerate(pks[start:start + 10_000], start=start)])


def timed(work: Callable[[], Any], repeat: int = 7) -> tuple[float, Any]:
    """Median milliseconds of ``repeat`` runs after one warm-up, and the last result."""
    result = work()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def measure(devices: int) -> list[tuple[str, float, int]]:
    from sqlalchemy import select

    from bindery import db
    from bindery.access import actor_for
    from bindery.models.catalog import Device
    from bindery.models.clouds import CloudApi
    from bindery.models.provisioning import ProvisioningRecord
    from bindery.provisioning.devices import device_page
    from bindery.settings import get_settings

    settings = get_settings()
    figures = []
    with db.session_scope(settings) as session:
        actor = actor_for(session=session, email=ADMIN)

        def page(**options: Any) -> Callable[[], int]:
            return lambda: len(device_page(session=session, actor=actor, bid=BID, limit=100, **options).rows)

        pk, api_pk = session.execute(select(ProvisioningRecord.device_id, ProvisioningRecord.cloud_api_id)
                                     .order_by(ProvisioningRecord.device_id).offset(devices // 2).limit(1)).one()
        middle = f"{pk}.{api_pk}"
        figures.append(("first page (API default order)", *timed(page())))
        figures.append(("first page, failed first (console)", *timed(page(failed_first=True))))
        figures.append(("first page of the failed (status=failed)", *timed(page(status="failed"))))
        figures.append(("a page halfway (keyset cursor)", *timed(page(after=middle))))
        listing = (select(Device.device_id, CloudApi.name, ProvisioningRecord)
                   .join(ProvisioningRecord, ProvisioningRecord.device_id == Device.id)  # type: ignore[arg-type]
                   .join(CloudApi, CloudApi.id == ProvisioningRecord.cloud_api_id)  # type: ignore[arg-type]
                   .order_by(Device.id))
        figures.append(("baseline: the page halfway by OFFSET",
                        *timed(lambda: len(session.execute(listing.offset(devices // 2).limit(100)).all()), 3)))
        figures.append(("baseline: load every record, cut a page",
                        *timed(lambda: len(session.execute(listing).all()[:100]), 1)))
    return figures


def one_database(url: str, devices: int) -> list[tuple[str, float, int]]:
    os.environ["BINDERY_DATABASE_URL"] = url
    started = time.perf_counter()
    prepare(devices)
    add_records()
    if url.startswith("postgresql"):  # as autovacuum would soon after a bulk load: the planner's statistics
        from sqlalchemy import text

        from bindery import db

        with db.get_engine().connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    print(f"  filled {devices:,} devices and records in {time.perf_counter() - started:.1f} s", flush=True)
    return measure(devices)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--skip-postgresql", action="store_true")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.database is None:  # each database in its own process: a clean engine and settings
        import subprocess

        for name in ["sqlite"] + ([] if args.skip_postgresql else ["postgresql"]):
            subprocess.run([sys.executable, __file__, "--devices", str(args.devices), "--database", name], check=True)
        return
    with tempfile.TemporaryDirectory() as home:
        os.environ["BINDERY_HOME"] = home
        if args.database == "sqlite":
            figures = one_database(f"sqlite:///{home}/bench.db", args.devices)
        else:
            import psycopg

            name = f"bench_devices_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            try:
                figures = one_database(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", args.devices)
            finally:
                from bindery import db

                db.get_engine().dispose()
                with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    first = figures[0][1]
    print(f"\n{args.database}, {args.devices:,} records (median ms of 7; baselines of 3 and 1)")
    print("| listing | ms | rows | ratio to the first page |\n| --- | --- | --- | --- |")
    for label, ms, rows in figures:
        print(f"| {label} | {ms:.1f} | {rows} | {ms / first:.1f}x |")


if __name__ == "__main__":
    main()
