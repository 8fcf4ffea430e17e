"""`bindery demo`, the main job of docs/getting-started.md, run as a user would (its own process, its own Prefect home),
twice in a row."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import segno


def user_env(home: Path) -> dict[str, str]:
    """A new user's environment: nothing of Bindery's or Prefect's set but the home folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BINDERY_", "PREFECT_"))}
    env["BINDERY_HOME"] = str(home)
    return env


def run_demo(home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bindery.cli", "demo"], env=user_env(home), capture_output=True,
                          text=True, timeout=300)


def assert_console_login(home: Path, password: str) -> None:
    """`bindery web` as printed, and the demo admin's login into it: the batch list shows the demo batch."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    web = subprocess.Popen([sys.executable, "-m", "bindery.cli", "web", "--port", str(port)], env=user_env(home),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as browser:
            for _ in range(100):
                try:
                    page = browser.get("/login")
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token
            browser.post("/login", data={"email": "admin@demo.bindery.local", "password": password,
                                         "csrf_token": token.group(1)})
            listed = browser.get("/")
            assert listed.status_code == 200 and 'data-bid="DEMO-0001"' in listed.text
            assert 'data-api="demo-receiver">demo-receiver: 1,000<' in listed.text  # the console's number format
    finally:
        web.terminate()
        web.wait(timeout=30)


@pytest.mark.slow
def test_demo_runs_twice(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = run_demo(home)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Failed to create the Prefect home directory" not in first.stderr
    assert "4. import (flow run) batch DEMO-0001: 1000 devices" in first.stdout
    assert "by QR text http://localhost:8000/bind?bid=DEMO-0001: bound 1000 devices" in first.stdout
    assert "7. manifest (flow run) 1000 devices" in first.stdout
    assert "1000 devices provisioned" in first.stdout
    assert "9. reconcile (flow run): 1 targets checked, 0 with drift" in first.stdout
    assert f"PREFECT_HOME={home.resolve() / 'prefect'} make server" in first.stdout
    second = run_demo(home)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "batch DEMO-0001: already imported" in second.stdout and "already bound" in second.stdout
    assert "nothing to do: all 1000 devices already provisioned in demo-receiver" in second.stdout
    manifest = (home / "demo" / "DEMO-0001-manifest.csv").read_text()
    assert manifest.startswith("device_id,group_id,certificate") and manifest.count("BEGIN CERTIFICATE") == 1000
    received = sqlite3.connect(home / "demo" / "receiver.db").execute("SELECT COUNT(*) FROM device").fetchone()
    assert received == (1000,)
    runs = sqlite3.connect(home / "prefect" / "prefect.db").execute(
        "SELECT COUNT(*) FROM flow_run WHERE state_type = 'COMPLETED'").fetchone()
    assert runs[0] >= 10, "every flow step ran as a Prefect flow run, twice"
    listed = subprocess.run([sys.executable, "-m", "bindery.cli", "batch", "list", "--user",
                             "admin@demo.bindery.local", "--json"], env=user_env(home),
                            capture_output=True, text=True, check=True)
    assert [(b["bid"], b["bound"], b["provisioned"]) for b in json.loads(listed.stdout)] == [
        ("DEMO-0001", 1000, {"demo-receiver": 1000})]
    console = re.search(r"log in as admin@demo\.bindery\.local with password (\S+) \(kept in", first.stdout)
    assert console and f"password {console.group(1)} " in second.stdout, "the same login on every run"
    assert_console_login(home, console.group(1))
    expected = io.BytesIO()
    segno.make("http://localhost:8000/bind?bid=DEMO-0001", error="m").save(expected, kind="svg", scale=4)
    assert (home / "demo" / "DEMO-0001-qr.svg").read_bytes() == expected.getvalue()
