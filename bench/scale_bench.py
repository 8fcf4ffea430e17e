"""Scale-out: one batch provisioned by 1 and by N Prefect workers (a real `prefect server`, PostgreSQL for
Bindery and Prefect) into the moto server behind the quota proxy at raised quotas (100/s); and where the
shared quota is kept — Bindery's database or a Prefect global concurrency limit — measured with three
processes taking the pace as fast as they can.

Run: bench/provision --workers 3 [--devices 3000], or .venv/bin/python bench/scale_bench.py --workers 3
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the checkout's packages (bench, bindery) first, as bench/provision does
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.databases import pg_database
from bench.pace_probe import busiest_second, run_probes
from bench.provision_bench import ADMIN, BID, aws_rig, forget_records, prepare, reset_aws, throttled
from bench.quota_proxy import RAISED_QUOTAS
from bindery.deployments.erp_client import ErpClient
from bindery.deployments.local_cluster import AUTH, prefect_server, process_tree, start_worker, stop_worker


class PeakRss:
    """Samples the peak RSS (VmHWM) of every process in the workers' trees while a run goes on."""

    def __init__(self, roots: list[int]):
        self.roots = roots
        self.peaks: dict[int, tuple[str, int]] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self.stop.wait(0.25):
            for root in self.roots:
                for pid in process_tree(root):
                    try:
                        status = Path(f"/proc/{pid}/status").read_text()
                    except OSError:
                        continue
                    kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")), 0)
                    label = "worker" if pid == root else "flow run"
                    self.peaks[pid] = (label, max(kb, self.peaks.get(pid, (label, 0))[1]))

    def __enter__(self) -> PeakRss:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()

    def summary(self) -> str:
        by_label: dict[str, list[int]] = {}
        for label, kb in self.peaks.values():
            by_label.setdefault(label, []).append(kb)
        return ", ".join(f"{label}s {len(kbs)} (max {max(kbs) / 1024:.0f} MB)"
                         for label, kbs in sorted(by_label.items()))


def provision_with(workers: int, env: dict[str, str], tmp: Path, proxy: str) -> tuple[float, int, str, str]:
    """One provision-batch run (``workers`` shards) served by ``workers`` process workers."""
    running = [start_worker(env, tmp / f"worker-{workers}-{i}.log") for i in range(workers)]
    erp = ErpClient(env["PREFECT_API_URL"], AUTH)
    try:
        with PeakRss([w.pid for w in running]) as rss:
            started = time.perf_counter()
            run = erp.start("provision-batch", "provision-batch",
                            {"bid": BID, "cloud_api": "iot", "user": ADMIN, "shards": workers},
                            message_id=uuid.uuid4().hex)
            done = erp.wait(run.id, timeout=7200, every=1)
            seconds = time.perf_counter() - started
    finally:
        erp.close()
        for worker in running:
            stop_worker(worker)
    return seconds, throttled(proxy), done.state, rss.summary()


def compare_limiters(api_id: int, pace: float, quota: float, env: dict[str, str], seconds: float = 10.0) -> None:
    print(f"quota kept across 3 processes (8 threads each, {seconds:.0f} s, pace {pace:.0f}/s for a quota of "
          f"{quota:.0f}/s):")
    for sharing in ("database", "prefect"):
        stamps = run_probes(processes=3, api_id=api_id, rate=pace, seconds=seconds, sharing=sharing, env=env)
        rate = len(stamps) / seconds
        print(f"  {sharing:<9} {rate:6.1f} calls/s = {rate / quota:.2f} of the quota, busiest second "
              f"{busiest_second(stamps)} calls ({'within' if busiest_second(stamps) <= quota else 'ABOVE'} the quota)")


def main(devices: int, workers: int) -> None:
    from sqlalchemy import text

    from bindery.db import get_engine
    from bindery.provisioning.ratelimit import DEFAULT_PACE as SAFETY

    quota = RAISED_QUOTAS["RegisterCertificateWithoutCA"]
    with pg_database("bench_bindery") as bindery_db, pg_database("bench_prefect") as prefect_db, \
            aws_rig(raised=True) as (proxy, tmp):
        os.environ["BINDERY_DATABASE_URL"] = f"postgresql+psycopg://postgres@{bindery_db}"
        os.environ["BINDERY_ALLOW_PRIVATE_TARGETS"] = "1"
        prepare(devices, proxy, quota, tmp)
        with get_engine().connect() as connection:
            api_id = int(connection.execute(text("SELECT id FROM cloud_api WHERE name = 'iot'")).scalar_one())
        with prefect_server(tmp / "prefect", f"postgresql+asyncpg://postgres@{prefect_db}") as env:
            compare_limiters(api_id, quota * SAFETY, quota, env)
            print(f"\n{devices} devices into aws-iot (moto behind the quota proxy, 50 ms per call), quota "
                  f"{quota:.0f}/s, pace {quota * SAFETY:.0f}/s, quota kept in the database")
            baseline = 0.0
            for count in sorted({1, workers}):
                forget_records()
                reset_aws(proxy)
                seconds, throttled_calls, state, rss = provision_with(count, env, tmp, proxy)
                rate = devices / seconds
                baseline = baseline or rate
                print(f"  {count} worker{'s' if count > 1 else ' '}: {seconds:6.1f} s {rate:6.1f} devices/s "
                      f"{rate / quota:.2f} of the quota, {rate / baseline:.2f}x one worker, throttled calls "
                      f"{throttled_calls}, run {state}; peak RSS: {rss}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=3, help="the run with N workers, after the one with 1")
    args = parser.parse_args()
    main(args.devices, args.workers)
