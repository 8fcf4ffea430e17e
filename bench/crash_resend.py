"""Certificates sent twice after a provisioning run is killed with -9 mid-run, then run again: this
checkout against a baseline checkout (the code before per-request recording), in one run.

Each variant, in a process of its own with its code first on sys.path: a fresh SQLite home, a demo reel of
--devices, an interop receiver in this process that answers each request after --delay seconds and counts
every certificate it is sent; `bindery provision` in a subprocess, killed once the receiver got half the
devices; then the same command again, to the end. Re-sent = certificates sent - devices held.

Run: bench/crash-resend --baseline DIR [--devices 2000] [--delay 0.2]
     (DIR: e.g. `git archive <commit> | tar -x -C DIR`)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request  # at the top: the endpoint's annotations are resolved from here

ADMIN, BID = "admin@bench.local", "BENCH-K"


def serve_receiver(tmp: Path, delay: float) -> tuple[str, Counter[str]]:
    import uvicorn

    from bindery.receiver import Store, _receive

    store, sent, app = Store(tmp / "recv.db"), Counter[str](), FastAPI()

    @app.post("/interop")
    async def interop(request: Request) -> Any:
        body = await request.json()
        if body.get("action") == "info":
            return {"action": "info", "compatibilityVersion": 1}
        sent.update(str(item.get("ref")) for item in body["certs"])
        await asyncio.sleep(delay)
        return [_receive(item, store) for item in body["certs"]]

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", sent


def prepare(tmp: Path, devices: int, url: str) -> None:
    from bindery import accounts, audit, binding, db
    from bindery.access import actor_for
    from bindery.catalog.importer import import_reel
    from bindery.catalog.trust import add_anchors
    from bindery.clouds.config import add_cloud_api
    from bindery.reels.demo import write_demo_reel
    from bindery.secrets import Secret
    from bindery.settings import get_settings

    settings = get_settings()
    db.upgrade(settings)
    demo = write_demo_reel(out=tmp / "reel", bid=BID, devices=devices, fmt="bindery-csv", public_url="http://x")
    with db.session_scope(settings) as session:
        add_anchors(session=session, paths=demo.ca_files, actor="bench")
    import_reel(settings=settings, path=demo.reel)
    with db.session_scope(settings) as session:
        accounts.create_account(session=session, name="Bench", actor=audit.operator_name())
        session.flush()
        accounts.add_user(session=session, email=ADMIN, account="Bench", role="admin", actor="bench")
    with db.session_scope(settings) as session:
        actor = actor_for(session=session, email=ADMIN)
        binding.bind(session=session, actor=actor, bid=BID)
        add_cloud_api(session=session, settings=settings, actor=actor, name="lab", kind="other",
                      options={"type": "private cloud", "url": f"{url}/interop", "quota": "1000"},
                      secret=Secret("bench:pw"))


def one(devices: int, delay: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        os.environ.update(BINDERY_HOME=str(tmp / "home"), BINDERY_ALLOW_PRIVATE_TARGETS="1")
        url, sent = serve_receiver(tmp, delay)
        prepare(tmp, devices, url)
        command = [sys.executable, "-m", "bindery.cli", "provision", BID, "--cloud-api", "lab", "--user", ADMIN]
        log = tmp / "run.log"
        run = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=tmp)
        while len(sent) < devices // 2:
            if run.poll() is not None:
                raise RuntimeError(f"the run ended before the kill: {log.read_text()[-2000:]}")
            time.sleep(0.01)
        run.send_signal(signal.SIGKILL)
        run.wait()
        at_kill = len(sent)
        started = time.monotonic()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
        return {"at_kill": at_kill, "resent": sum(sent.values()) - len(sent), "held": len(sent),
                "rerun_seconds": round(time.monotonic() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, help="a checkout of the code to compare with")
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--delay", type=float, default=0.2, help="seconds the receiver takes per request")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.devices, args.delay)))
        return
    here = Path(__file__).resolve().parents[1]
    variants = [("baseline", args.baseline.resolve())] if args.baseline else []
    variants.append(("this checkout", here))
    figures = {}
    for name, source in variants:
        env = {**os.environ, "PYTHONPATH": str(source)}
        done = subprocess.run([sys.executable, __file__, "--one", "--devices", str(args.devices),
                               "--delay", str(args.delay)], env=env, capture_output=True, text=True, check=True)
        figures[name] = json.loads(done.stdout.strip().splitlines()[-1])
        f = figures[name]
        print(f"{name:>14}: killed at {f['at_kill']} of {args.devices} devices sent; {f['resent']} certificates "
              f"re-sent by the rerun; every device held once: {f['held'] == args.devices}; "
              f"rerun {f['rerun_seconds']} s")
    if "baseline" in figures:
        before, after = figures["baseline"]["resent"], figures["this checkout"]["resent"]
        print(f"re-sent after the kill: {after} vs {before} ({after / before:.2f}x)" if before else
              f"re-sent after the kill: {after} vs {before}")


if __name__ == "__main__":
    main()
