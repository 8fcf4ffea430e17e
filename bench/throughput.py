"""Throughput at the quota: `bindery provision` processes against the stub AWS IoT endpoint
(bench/aws_stub.py: a fixed latency per call, AWS's per-API quotas enforced per sliding second).

Cases (each a fresh database and stub): raised quotas (100/s) at 50 ms and 150 ms per call, one
process; the default quotas (RegisterCertificateWithoutCA 10/s) at 50 ms; three processes sharing one
raised quota (PostgreSQL, so the three hosts' pace is one). The baseline in the same run is the fixed
configuration Bindery had before: 16 devices in flight per chunk and a pace of 90 % of the quota
(``--baseline``). Prints devices/s, the ratio to the quota, throttled calls and the busiest second,
then (``--profile``) a cProfile summary of one process: where the CPU of the hot path goes.

Run: bench/throughput [--devices 3000] [--baseline] [--profile] [--only NAME]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ADMIN, POLICY = "admin@bench.local", "BenchPolicy"


@dataclass(frozen=True)
class Case:
    name: str
    raised: bool
    latency: float
    workers: int = 1
    devices_per_second: float = 100.0  # of the quota, for sizing the run

    @property
    def quota(self) -> float:
        return 100.0 if self.raised else 10.0


CASES = [Case("raised-50ms", True, 0.05), Case("raised-150ms", True, 0.15), Case("default-50ms", False, 0.05),
         Case("raised-50ms-3-workers", True, 0.05, workers=3)]


@contextmanager
def stub(case: Case) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "bench.aws_stub", "--port", str(port), "--latency", str(case.latency),
               *(["--raised"] if case.raised else [])]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{url}/_bench/stats").raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def prepare(env: dict[str, str], stub_url: str, quota: float, batches: list[tuple[str, int]], pace: str | None,
            home: Path) -> None:
    """One account, its admin, the aws-iot API `iot` through the stub, the batches imported and bound."""
    bindery = str(Path(sys.executable).parent / "bindery")

    def run(*args: str) -> None:
        subprocess.run([bindery, *args], env=env, check=True, capture_output=True)

    from bindery.reels.demo import write_demo_reel

    run("db", "upgrade")
    run("account", "create", "Bench")
    run("user", "add", ADMIN, "--account", "Bench", "--role", "admin")
    run("cloud-api", "add", "iot", "--user", ADMIN, "--kind", "aws-iot", "--region", "us-east-1", "--policy", POLICY,
        "--endpoint-url", stub_url, "--quota", str(quota), "--no-check", *(["--pace", pace] if pace else []))
    for bid, devices in batches:
        demo = write_demo_reel(out=home / bid, bid=bid, devices=devices, fmt="bindery-csv", public_url="http://x")
        run("trust", "add", *map(str, demo.ca_files))
        run("reel", "import", str(demo.reel))
        run("bind", bid, "--user", ADMIN)


def measure(case: Case, devices: int, baseline: bool) -> dict[str, float]:
    from bench.databases import database

    with tempfile.TemporaryDirectory() as tmp, stub(case) as url, \
            database(case.workers > 1, Path(tmp), "bench_tp") as db_url:
        home = Path(tmp)
        env = {**os.environ, "BINDERY_HOME": str(home / "home"), "BINDERY_DATABASE_URL": db_url,
               "BINDERY_ALLOW_PRIVATE_TARGETS": "1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
               "AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": str(Path.cwd())}
        if baseline:  # what Bindery did before: 16 devices in flight per chunk, paced at 90 %
            env["BINDERY_AWS_DEVICE_CONCURRENCY"] = "16"
        per_worker = devices // case.workers
        batches = [(f"TP-{i}", per_worker) for i in range(case.workers)]
        prepare(env, url, case.quota, batches, "0.9" if baseline else None, home)
        httpx.post(f"{url}/_bench/reset").raise_for_status()
        bindery = str(Path(sys.executable).parent / "bindery")
        started = time.perf_counter()
        timer = ["/usr/bin/time", "-f", "cpu %U user %S sys %e wall %M KB"] if os.environ.get("BENCH_VERBOSE") else []
        processes = [subprocess.Popen([*timer, bindery, "provision", bid, "--cloud-api", "iot", "--user", ADMIN],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for bid, _ in batches]
        outputs = [p.communicate(timeout=3600) for p in processes]
        elapsed = time.perf_counter() - started
        failed = [out[1].decode()[-500:] for p, out in zip(processes, outputs, strict=True) if p.returncode != 0]
        stats = httpx.get(f"{url}/_bench/stats").json()
        if os.environ.get("BENCH_VERBOSE"):
            print({k: v for k, v in stats.items()}, outputs[0][1].decode()[-20000:])
    calls = sum(stats["calls"].values())
    throttled = sum(stats["throttled"].values())
    return {"seconds": elapsed, "devices/s": per_worker * case.workers / elapsed, "calls": calls,
            "at the target": stats["registered_per_second"],
            "throttled": throttled, "busiest": stats["busiest_second"]["RegisterCertificateWithoutCA"],
            "failed runs": len(failed)}


def profile(devices: int) -> None:
    """One `bindery provision` at the raised quota, 50 ms, sampled by py-spy (100 samples a second of every
    thread that is running, not idle): the flame summary — whose code holds the samples, by the innermost
    frame of a known library."""
    case = CASES[0]
    spy = Path(sys.executable).parent / "py-spy"
    with tempfile.TemporaryDirectory() as tmp, stub(case) as url:
        home = Path(tmp)
        env = {**os.environ, "BINDERY_HOME": str(home / "home"), "BINDERY_DATABASE_URL": f"sqlite:///{home}/p.db",
               "BINDERY_ALLOW_PRIVATE_TARGETS": "1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
               "AWS_DEFAULT_REGION": "us-east-1"}
        prepare(env, url, case.quota, [("TP-P", devices)], None, home)
        out = home / "provision.folded"
        bindery = str(Path(sys.executable).parent / "bindery")
        subprocess.run([str(spy), "record", "--format", "raw", "--rate", "100", "--nonblocking", "-o", str(out),
                        "--", bindery, "provision", "TP-P", "--cloud-api", "iot", "--user", ADMIN],
                       env=env, capture_output=True, check=True)
        stacks = [line.rsplit(" ", 1) for line in out.read_text().splitlines() if line.strip()]
    total = sum(int(count) for _, count in stacks)
    by_module: dict[str, int] = {}
    for frames, count in stacks:
        module = next((MODULES[key] for frame in reversed(frames.split(";")) for key in MODULES if key in frame),
                      "native code, no Python frame (C libraries, waiting for the GIL)" if not frames.strip()
                      else "other (interpreter start-up, threading)")
        by_module[module] = by_module.get(module, 0) + int(count)
    print(f"\npy-spy, one process, {devices} devices at 100/s and 50 ms: {total} samples of running threads")
    print("| whose code (innermost known frame) | share of the samples |\n| --- | --- |")
    for module, count in sorted(by_module.items(), key=lambda item: -item[1]):
        print(f"| {module} | {count / max(1, total):.0%} |")


MODULES = {"bindery/": "Bindery's own code", "sqlalchemy/": "SQLAlchemy (records, pace)",
           "botocore/auth": "botocore: signing", "botocore/serialize": "botocore: serializing",
           "botocore/parsers": "botocore: parsing answers", "botocore/": "botocore: the rest",
           "urllib3/": "urllib3 (HTTP)", "http/client": "http.client", "json/": "json",
           "cryptography/": "cryptography", "rich/": "rich (progress bar)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=5000, help="at raised quotas (a tenth at the default)")
    parser.add_argument("--baseline", action="store_true", help="also run the fixed configuration of before")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--only", help="one case by name")
    args = parser.parse_args()
    print("devices/s at the target: registrations the stub accepted, first to last (the pace the quota sees);\n"
          "wall: devices over the processes' whole lives, start-up included\n")
    print("| case | configuration | devices | at the target /s | of the quota | wall s | wall /s | throttled calls "
          "| busiest second |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for case in CASES:
        if args.only and case.name != args.only:
            continue
        devices = args.devices if case.raised else max(100, args.devices // 10)
        for baseline in ([False, True] if args.baseline else [False]):
            got = measure(case, devices, baseline)
            label = "fixed: 16 in flight, 90 %" if baseline else "Little's law, 97 %, AIMD"
            print(f"| {case.name} | {label} | {devices} | {got['at the target']:.1f} | "
                  f"{got['at the target'] / case.quota:.3f} | {got['seconds']:.1f} | {got['devices/s']:.1f} | "
                  f"{got['throttled']:.0f} of {got['calls']:.0f} ({got['throttled'] / max(1, got['calls']):.2%}) | "
                  f"{got['busiest']:.0f} / {case.quota:.0f}"
                  + (f" | {got['failed runs']:.0f} runs failed" if got["failed runs"] else "") + " |", flush=True)
    if args.profile:
        profile(args.devices)


if __name__ == "__main__":
    main()
