"""Throughput into Azure DPS at its default quota: `bindery provision` (a process, on PostgreSQL unless
--sqlite) into the HTTPS stand-in of the DPS service API (tests/support/dps.py, served in this process:
1,000 operations a minute, counted in any 10 s, 429 with Retry-After above; a fixed latency per request).

The quota's ceiling is 10 enrollments per bulk operation x 1,000 operations a minute = 166.7 devices/s.
The baseline in the same run is the same provisioning with ``--chunk-size 1``: one enrollment per
operation, the ceiling of any client that does not use the bulk operation (16.7 devices/s).
Prints devices/s at the stand-in (first to last enrollment), the ratio to the ceiling, the wall rate
(start-up included), throttled requests and the busiest 10 s.

Run: bench/dps [--devices 3000] [--latency 0.1] [--no-baseline] [--sqlite]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ADMIN = "admin@bench.local"
CEILING = 10 * 1000 / 60


def prepare(env: dict[str, str], url: str, connection_string: str, devices: int, chunk_size: int | None,
            home: Path) -> None:
    from bindery.reels.demo import write_demo_reel

    bindery = str(Path(sys.executable).parent / "bindery")

    def run(*args: str) -> None:
        subprocess.run([bindery, *args], env={**env, "DPS_CS": connection_string}, check=True, capture_output=True)

    run("db", "upgrade")
    run("account", "create", "Bench")
    run("user", "add", ADMIN, "--account", "Bench", "--role", "admin")
    run("cloud-api", "add", "dps", "--user", ADMIN, "--kind", "azure-dps", "--connection-string", "env:DPS_CS",
        "--endpoint-url", url, "--no-check", *(["--chunk-size", str(chunk_size)] if chunk_size else []))
    demo = write_demo_reel(out=home / "reel", bid="DPS-BENCH", devices=devices, fmt="bindery-csv",
                           public_url="http://x")
    run("trust", "add", *map(str, demo.ca_files))
    run("reel", "import", str(demo.reel))
    run("bind", "DPS-BENCH", "--user", ADMIN)


def measure(devices: int, latency: float, chunk_size: int | None, postgres: bool) -> dict[str, float]:
    from bench.databases import database
    from tests.support.dps import running_dps

    with tempfile.TemporaryDirectory() as tmp, database(postgres, Path(tmp), "bench_dps") as db_url:
        home = Path(tmp)
        with running_dps(home / "tls", latency=latency) as (dps, url):
            env = {**os.environ, "BINDERY_HOME": str(home / "home"), "BINDERY_DATABASE_URL": db_url,
                   "BINDERY_ALLOW_PRIVATE_TARGETS": "1",
                   "SSL_CERT_FILE": str(home / "tls" / "ca.pem"), "PYTHONPATH": str(Path.cwd())}
            prepare(env, url, dps.connection_string(), devices, chunk_size, home)
            dps.calls.clear()
            dps.operations.clear()
            bindery = str(Path(sys.executable).parent / "bindery")
            started = time.monotonic()
            done = subprocess.run([bindery, "provision", "DPS-BENCH", "--cloud-api", "dps", "--user", ADMIN],
                                  env=env, capture_output=True, timeout=3600)
            elapsed = time.monotonic() - started
            if done.returncode != 0:
                raise SystemExit(f"provision failed: {done.stderr.decode()[-2000:]}")
            created = sorted(dps.created_at)
            first_call = [t for t in created if t == created[0]]
            span = created[-1] - created[0]
            at_target = (len(created) - len(first_call)) / span if span > 0 else float("nan")
            busiest = max((sum(1 for u in created if t <= u < t + 10) for t in created), default=0) / 10
            return {"devices": len(created), "at the target": at_target, "wall": elapsed,
                    "wall/s": len(created) / elapsed, "requests": len(dps.calls), "throttled": dps.throttled,
                    "busiest": busiest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=3000)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per request at the stand-in")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--sqlite", action="store_true", help="the embedded database instead of PostgreSQL")
    args = parser.parse_args()
    print(f"ceiling at the default quota: {CEILING:.1f} devices/s (10 per bulk operation, 1,000 operations a "
          f"minute); stand-in latency {args.latency * 1000:.0f} ms\n")
    print("| configuration | devices | at the stand-in /s | of the ceiling | wall s | wall /s | requests "
          "| throttled | busiest 10 s /s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    cases: list[tuple[str, int, int | None]] = [("bulk operations of 10 (default)", args.devices, None)]
    if not args.no_baseline:
        cases.append(("baseline: --chunk-size 1, one enrollment an operation", max(100, args.devices // 10), 1))
    for label, devices, chunk in cases:
        got = measure(devices, args.latency, chunk, postgres=not args.sqlite)
        print(f"| {label} | {got['devices']:.0f} | {got['at the target']:.1f} | {got['at the target'] / CEILING:.3f} "
              f"| {got['wall']:.1f} | {got['wall/s']:.1f} | {got['requests']:.0f} | {got['throttled']:.0f} "
              f"| {got['busiest']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
