"""Peak RSS of Bindery's processes over a 100,000-device batch: `bindery reel import` of an Infineon 7z
reel and `bindery provision` into a reference receiver (each its own process, measured by wait4), next
to a bare Python process that imports Bindery's modules and does nothing (the baseline). Reconcile's
figure comes from bench/reconcile, which runs it as its own process the same way.

Run: bench/memory [--devices 100000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

LIMIT_MB = 300
ADMIN = "admin@bench.local"


def measured(command: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> tuple[float, float, str]:
    """Run a command as a child; (seconds, peak RSS in MB, its last output line)."""
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert child.stdout is not None
    output = child.stdout.read()
    _pid, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in ok:
        raise RuntimeError(f"{' '.join(command[2:5])} failed: {output[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, output.strip().splitlines()[-1] if output.strip() else ""


def bindery(*args: str) -> list[str]:
    return [sys.executable, "-m", "bindery.cli", *args]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def report(label: str, seconds: float, mb: float, devices: int | None = None) -> None:
    rate = f"{devices / seconds:8,.0f} devices/s" if devices else " " * 19
    print(f"{label:<46} {seconds:7.1f} s {rate}  peak RSS {mb:5.0f} MB  "
          f"{'under' if mb < LIMIT_MB else 'OVER'} {LIMIT_MB} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "BINDERY_HOME": str(Path(tmp) / "home"), "BINDERY_ALLOW_PRIVATE_TARGETS": "1",
               "BINDERY_USER": ADMIN}
        if args.database_url:
            env["BINDERY_DATABASE_URL"] = args.database_url
        made = subprocess.run([sys.executable, "-c", "from bindery.reels.demo import write_demo_reel; "
                               "from pathlib import Path; "
                               f"d = write_demo_reel(out=Path({tmp!r}) / 'reel', bid='MEM-1', devices={args.devices}, "
                               "fmt='infineon', public_url='http://x'); print(d.reel); print(*d.ca_files)"],
                              env=env, check=True, capture_output=True, text=True).stdout.splitlines()
        reel, cas = made[0], made[1].split()
        subprocess.run(bindery("db", "upgrade"), env=env, check=True, capture_output=True)
        subprocess.run(bindery("trust", "add", *cas), env=env, check=True, capture_output=True)
        print(f"{args.devices} devices, database {'PostgreSQL' if args.database_url else 'SQLite'}")
        seconds, mb, _ = measured([sys.executable, "-c", "import bindery.cli, bindery.provisioning.run, "
                                   "bindery.reconcile"], env)
        report("baseline: python importing Bindery's modules", seconds, mb)
        seconds, mb, _ = measured(bindery("reel", "import", reel), env)
        report("bindery reel import (Infineon 7z)", seconds, mb, args.devices)
        for command in (["account", "create", "Bench"], ["user", "add", ADMIN, "--account", "Bench", "--role", "admin"],
                        ["bind", "MEM-1"]):
            subprocess.run(bindery(*command), env=env, check=True, capture_output=True)
        port = free_port()
        receiver = subprocess.Popen(bindery("receiver", "--port", str(port), "--basic", "bench:pw", "--db",
                                            str(Path(tmp) / "recv.db")), env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    httpx.get(f"http://127.0.0.1:{port}/devices", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            subprocess.run(bindery("cloud-api", "add", "lab", "--kind", "other", "--type", "private cloud",
                                   "--credentials", "bench:pw", "--url", f"http://127.0.0.1:{port}/interop",
                                   "--quota", "100000"), env=env, check=True, capture_output=True)
            seconds, mb, last = measured(bindery("provision", "MEM-1", "--cloud-api", "lab"), env)
            report("bindery provision (into a reference receiver)", seconds, mb, args.devices)
            print(f"  {last}")
        finally:
            receiver.terminate()
            receiver.wait(timeout=30)


if __name__ == "__main__":
    main()
