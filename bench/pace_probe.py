"""One process taking a target's quota as fast as its threads can: prints the wall-clock time of every
call it was allowed, as JSON. Several of these side by side show whether the quota holds across
processes (tests/bindery/provisioning/test_quota.py, bench/provision --limiter).

Run: python -m bench.pace_probe --api-id 1 --rate 50 --seconds 3 --threads 8 [--sharing database]
(BINDERY_DATABASE_URL names the database; PREFECT_API_URL the server for --sharing prefect)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence


def busiest_second(stamps: Sequence[float]) -> int:
    """The most calls in any one-second window (what a provider's per-second quota counts)."""
    most, first = 0, 0
    for last, stamp in enumerate(stamps):
        while stamp - stamps[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def run_probes(*, processes: int, api_id: int, rate: float, seconds: float, threads: int = 8,
               sharing: str = "database", env: dict[str, str] | None = None, startup: float = 8.0) -> list[float]:
    """``processes`` probes started together; the calls of all of them, in time order."""
    start_at = time.time() + startup
    command = [sys.executable, "-m", "bench.pace_probe", "--api-id", str(api_id), "--rate", str(rate),
               "--seconds", str(seconds), "--threads", str(threads), "--sharing", sharing,
               "--start-at", str(start_at)]
    running = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env or os.environ.copy()) for _ in range(processes)]
    stamps: list[float] = []
    for probe in running:
        out, err = probe.communicate(timeout=startup + seconds + 120)
        if probe.returncode != 0:
            raise RuntimeError(f"pace probe failed: {err[-2000:]}")
        stamps.extend(json.loads(out))
    return sorted(stamps)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api-id", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--sharing", default=None, help="database, prefect or process")
    parser.add_argument("--start-at", type=float, default=0.0, help="epoch second to start at (line up processes)")
    args = parser.parse_args()
    if args.sharing:
        os.environ["BINDERY_QUOTA_SHARING"] = args.sharing
    from bindery.provisioning.quota import pacer_for
    from bindery.settings import get_settings

    pacer = pacer_for(get_settings(), args.api_id, args.rate)
    if args.start_at:
        time.sleep(max(0.0, args.start_at - time.time()))
    stop = time.time() + args.seconds
    stamps: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        while time.time() < stop:
            pacer.acquire(1.0)
            now = time.time()
            if now < stop:
                with lock:
                    stamps.append(now)

    threads = [threading.Thread(target=take) for _ in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps(sorted(stamps)))


if __name__ == "__main__":
    main()
