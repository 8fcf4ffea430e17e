"""Verification on all cores: one reel imported with 1 verify worker and with N (the default: every
core), each import in its own fresh process and database, so the verify stage's time and each
process's peak RSS are its own.

``--flow`` also runs the import-reel flow (verify tasks on Prefect's threads, each handing its chunk to
the flow process's worker processes) with 1 and N verify workers, the whole flow timed.

Run: bench/import-cores [--devices 100000] [--workers N] [--format infineon|microchip|...] [--flow]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, os, sys, threading, time
from pathlib import Path
from bindery import audit, db
from bindery.catalog.importer import import_reel
from bindery.catalog.trust import add_anchors
from bindery.settings import get_settings

settings = get_settings()
db.upgrade(settings)
with db.session_scope(settings) as session:
    add_anchors(session=session, paths=[Path(p) for p in sys.argv[2:]], actor=audit.operator_name())
stages, clock = {}, {"stage": "", "at": time.perf_counter()}
workers_peak = [0]

def sample():  # the worker processes are the fork server's children: read their RSS from /proc
    while True:
        parents = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    parents[int(entry)] = int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    pass
        family, grew = {os.getpid()}, True
        while grew:
            grew = False
            for pid, parent in parents.items():
                if parent in family and pid not in family:
                    family.add(pid)
                    grew = True
        for pid in family - {os.getpid()}:
            try:
                for line in open(f"/proc/{pid}/status"):
                    if line.startswith("VmRSS"):
                        workers_peak[0] = max(workers_peak[0], int(line.split()[1]))
            except OSError:
                pass
        time.sleep(0.2)

threading.Thread(target=sample, daemon=True).start()

def progress(stage, _done, _total):
    now = time.perf_counter()
    if stage != clock["stage"]:
        if clock["stage"]:
            stages[clock["stage"]] = now - clock["at"]
        clock.update(stage=stage, at=now)

def peak_kb():  # VmHWM: this process image's own peak (ru_maxrss also counts the parent's image before exec)
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))

started = time.perf_counter()
report = import_reel(settings=settings, path=Path(sys.argv[1]), progress=progress)
stages[clock["stage"]] = time.perf_counter() - clock["at"]
print(json.dumps({"imported": report.imported, "seconds": time.perf_counter() - started, "stages": stages,
                  "rss_mb": peak_kb() / 1024,
                  "workers_rss_mb": workers_peak[0] / 1024}))
"""


FLOW_CHILD = r"""
import json, sys, time
from pathlib import Path
from prefect import flow
from bindery import audit, db
from bindery.catalog.trust import add_anchors
from bindery.flows.import_reel import import_reel
from bindery.settings import get_settings

settings = get_settings()
db.upgrade(settings)
with db.session_scope(settings) as session:
    add_anchors(session=session, paths=[Path(p) for p in sys.argv[2:]], actor=audit.operator_name())

@flow
def warm_up() -> None:  # the ephemeral Prefect server starts here, outside the measured time
    pass

warm_up()
started = time.perf_counter()
summary = import_reel(path=sys.argv[1])
print(json.dumps({"imported": summary["imported"], "seconds": time.perf_counter() - started,
                  "processes": summary["verify_processes"]}))
"""


def run(reel: Path, cas: list[Path], workers: int, tmp: Path, flow: bool = False) -> dict[str, object]:
    home = tmp / f"home-{workers}-{'flow' if flow else 'cli'}"
    env = {**os.environ, "BINDERY_HOME": str(home), "BINDERY_DATABASE_URL": f"sqlite:///{home}/b.db",
           "BINDERY_VERIFY_WORKERS": str(workers), "PREFECT_HOME": str(home / "prefect"),
           "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "true"}
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run([sys.executable, "-c", FLOW_CHILD if flow else CHILD, str(reel), *map(str, cas)], env=env,
                          check=True, capture_output=True, text=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--format", default="infineon", help="demo reel format (infineon: a 7z reel)")
    parser.add_argument("--flow", action="store_true", help="also run the import-reel flow both ways")
    args = parser.parse_args()
    from bindery.reels.demo import write_demo_reel

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        demo = write_demo_reel(out=Path(tmp) / "reel", bid="BENCH-CORES", devices=args.devices, fmt=args.format,
                               public_url="http://localhost")
        print(f"dummy reel: {args.devices:,} devices written in {time.perf_counter() - started:.0f} s")
        one = run(demo.reel, demo.ca_files, 1, Path(tmp))
        many = run(demo.reel, demo.ca_files, args.workers, Path(tmp))
        flows = [(w, run(demo.reel, demo.ca_files, w, Path(tmp), flow=True)) for w in (1, args.workers)] \
            if args.flow else []
    print("\n| verify workers | import s | verify stage s | devices/s verified | peak RSS (import) | peak RSS "
          "(a worker) |\n| --- | --- | --- | --- | --- | --- |")
    for label, got in (("1 (in process)", one), (f"{args.workers} processes", many)):
        stages = got["stages"]
        assert isinstance(stages, dict)
        print(f"| {label} | {got['seconds']:.1f} | {stages['verify']:.1f} | {args.devices / stages['verify']:,.0f} | "
              f"{got['rss_mb']:.0f} MB | {got['workers_rss_mb']:.0f} MB |")
    ratio = one["stages"]["verify"] / many["stages"]["verify"]  # type: ignore[index]
    print(f"\nverify stage, {args.workers} processes vs one: {ratio:.2f}x")
    if flows:
        print("\n| import-reel flow (Prefect, verify tasks) | whole flow s | verified in worker processes |"
              "\n| --- | --- | --- |")
        for workers, got in flows:
            print(f"| {workers} verify worker{'s' if workers > 1 else ''} | {got['seconds']:.1f} | "
                  f"{got['processes']} |")
        print(f"\nimport-reel flow, {args.workers} verify workers vs one: "
              f"{float(flows[0][1]['seconds']) / float(flows[1][1]['seconds']):.2f}x (whole flow)")


if __name__ == "__main__":
    main()
