"""Faults injected for real: a silent network, a stopped and restarted PostgreSQL, a full disk. Each ends
in one clear line (exit 1 or HTTP 503), never a traceback or a hang, and nothing lost or duplicated."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bindery import db as database
from bindery.settings import Settings, get_settings
from bindery.web.app import create_app as create_web
from tests.conftest import Cli
from tests.faults.conftest import Cluster
from tests.support.servers import serve
from tests.support.world import ADMIN, make_world

pytestmark = pytest.mark.xdist_group("private-postgresql")


def bindery(*args: str, env: dict[str, str], timeout: float = 60,
            stdout: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bindery.cli", *args], env={**os.environ, **env}, text=True,
                          stdout=stdout if stdout is not None else subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)


def one_clean_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.fixture
def installation(cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Bindery on a fresh database of the private cluster, as this process's environment."""
    url = cluster.create_database(f"faults_{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("BINDERY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BINDERY_DATABASE_URL", url)
    monkeypatch.setenv("BINDERY_DATABASE_CONNECT_TIMEOUT", "3")
    monkeypatch.setenv("BINDERY_ALLOW_PRIVATE_TARGETS", "1")
    monkeypatch.delenv("BINDERY_USER", raising=False)
    database.upgrade(get_settings())
    yield get_settings()
    database.engine_for(url).dispose()


@pytest.fixture
def pg_cli(installation: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The CLI in this process, on the private cluster's database."""
    return Cli(capsys, monkeypatch)


@pytest.fixture
def stopped(cluster: Cluster) -> Iterator[Cluster]:
    cluster.stop()
    try:
        yield cluster
    finally:
        cluster.start()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose listener accepts TCP (the kernel completes the handshake) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def test_silent_database_ends_in_one_line_within_the_connect_timeout(silent_port: int, tmp_path: Path) -> None:
    started = time.monotonic()
    result = bindery("batch", "list", env={"BINDERY_HOME": str(tmp_path), "BINDERY_DATABASE_CONNECT_TIMEOUT": "2",
                                           "BINDERY_DATABASE_URL":
                                               f"postgresql+psycopg://u:pw@127.0.0.1:{silent_port}/bindery"})
    assert result.returncode == 1 and time.monotonic() - started < 20
    assert one_clean_line(result.stderr) == (f"error: database unreachable (postgresql://127.0.0.1:{silent_port}/"
                                             "bindery): connection timed out")


def test_stopped_database_is_one_line_without_hints(installation: Settings, stopped: Cluster) -> None:
    result = bindery("batch", "list", env={})
    assert result.returncode == 1
    assert one_clean_line(result.stderr) == (f"error: database unreachable (postgresql://127.0.0.1:{stopped.port}/"
                                             f"{installation.resolved_database_url.rsplit('/', 1)[1]}): "
                                             "connection refused")


def test_api_answers_503_during_an_outage_and_recovers(cluster: Cluster, pg_cli: Cli, tmp_path: Path) -> None:
    cli = pg_cli
    make_world(cli, tmp_path, {"OUT-1": ["o-1", "o-2"]})
    token = cli.ok("token", "create", "--user", ADMIN, "--name", "faults").out.strip().splitlines()[-1]
    with serve(create_web(get_settings())) as url, httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
        assert api.get("/api/batches").status_code == 200
        cluster.stop()
        try:
            down = api.get("/api/batches")
            page = httpx.get(f"{url}/login")
        finally:
            cluster.start()
        assert down.status_code == 503 and down.headers["retry-after"] == "10"
        assert down.json()["detail"].startswith("database unreachable (postgresql://127.0.0.1:")
        assert "Traceback" not in down.text and "content-security-policy" in down.headers
        assert page.status_code == 200, "pages without the database still render"
        deadline = time.monotonic() + 30
        while (again := api.get("/api/batches")).status_code != 200:
            assert time.monotonic() < deadline, again.text
            time.sleep(0.5)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_manifest_into_a_full_disk_is_one_line(cli: Cli, tmp_path: Path, settings: Settings) -> None:
    make_world(cli, tmp_path, {"FULL-1": ["f-1", "f-2", "f-3"]})
    cli.ok("bind", "FULL-1", "--user", ADMIN)
    with open("/dev/full", "w") as full:
        result = bindery("manifest", "FULL-1", "--user", ADMIN, "--out", "-", env={}, stdout=full.fileno())
    assert result.returncode == 1
    assert one_clean_line(result.stderr) == ("error: cannot write the Manifest File to standard output: "
                                             "No space left on device")


def bound_to_a_slow_target(cli: Cli, tmp_path: Path, receiver: str, bid: str, devices: list[str]) -> None:
    """A bound batch and an API paced at 15 devices/s, so a run lasts long enough to be interrupted."""
    make_world(cli, tmp_path, {bid: devices})
    cli.ok("cloud-api", "add", "lab", "--user", ADMIN, "--kind", "other", "--type", "private cloud",
           "--credentials", "bindery:pw", "--url", f"{receiver}/interop", "--quota", "15", "--no-check")
    cli.ok("bind", bid, "--user", ADMIN)


def test_database_restart_during_provisioning_costs_seconds_not_a_rerun(
        cluster: Cluster, pg_cli: Cli, tmp_path: Path, receiver: str) -> None:
    cli = pg_cli
    devices = [f"r-{i:03d}" for i in range(120)]
    bound_to_a_slow_target(cli, tmp_path, receiver, "RST-1", devices)
    env = {"BINDERY_ALLOW_PRIVATE_TARGETS": "1", "BINDERY_PROVISION_CHUNK_SIZE": "10"}
    process = subprocess.Popen([sys.executable, "-m", "bindery.cli", "provision", "RST-1", "--cloud-api", "lab",
                                "--user", ADMIN], env={**os.environ, **env}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while len(httpx.get(f"{receiver}/devices").json()) < 20:  # the run is under way
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.2)
    cluster.stop()
    restarted = threading.Timer(4.0, cluster.start)
    restarted.start()
    _out, err = process.communicate(timeout=180)
    restarted.join()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    held = [d["ref"] for d in httpx.get(f"{receiver}/devices").json()]
    assert sorted(held) == devices, "every device once"
    shown = cli.ok("batch", "show", "RST-1", "--user", ADMIN, "--json").json
    assert shown["provisioned"] == {"lab": 120}  # type: ignore[index]


def test_web_job_cut_by_an_outage_fails_clearly_and_strands_no_lease(
        cluster: Cluster, pg_cli: Cli, tmp_path: Path, receiver: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cli = pg_cli
    devices = [f"w-{i:03d}" for i in range(60)]
    bound_to_a_slow_target(cli, tmp_path, receiver, "JOB-1", devices)
    token = cli.ok("token", "create", "--user", ADMIN, "--name", "faults").out.strip().splitlines()[-1]
    monkeypatch.setenv("BINDERY_DATABASE_RETRY_SECONDS", "2")
    monkeypatch.setenv("BINDERY_PROVISION_CHUNK_SIZE", "10")
    with serve(create_web(get_settings())) as url, httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
        job = api.post("/api/batches/JOB-1/provision", json={"cloud_api": "lab"}).json()
        deadline = time.monotonic() + 30
        while len(httpx.get(f"{receiver}/devices").json()) < 10:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        cluster.stop()
        try:
            assert api.get(f"/api/jobs/{job['id']}").status_code == 503  # asking needs the database too
            time.sleep(5)  # longer than the job's retry window
        finally:
            cluster.start()
        deadline = time.monotonic() + 60
        while (status := api.get(f"/api/jobs/{job['id']}")).status_code != 200 or status.json()["state"] == "RUNNING":
            assert time.monotonic() < deadline, status.text
            time.sleep(0.3)
        status = status.json()
        assert status["state"] == "FAILED" and "database unreachable" in status["message"], status
        started = time.monotonic()
        again = api.post("/api/batches/JOB-1/provision", json={"cloud_api": "lab"})
        assert again.status_code == 202 and time.monotonic() - started < 5, again.text
        deadline = time.monotonic() + 60
        while (done := api.get(f"/api/jobs/{again.json()['id']}").json())["state"] == "RUNNING":
            assert time.monotonic() < deadline, done
            time.sleep(0.3)
    assert done["state"] == "COMPLETED" and done["provisioned"] == {"lab": 60}, done
    assert sorted(d["ref"] for d in httpx.get(f"{receiver}/devices").json()) == devices


@pytest.fixture
def tiny_disk() -> Iterator[Path]:
    """A 64 KiB tmpfs: a Manifest File of a few hundred devices does not fit."""
    mount = Path(tempfile.mkdtemp(prefix="bindery-tiny-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True, capture_output=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)
        mount.rmdir()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_manifest_onto_a_full_filesystem_is_one_line_and_leaves_no_file(cli: Cli, tmp_path: Path, tiny_disk: Path,
                                                                        settings: Settings) -> None:
    make_world(cli, tmp_path, {"FULL-2": [f"g-{i:03d}" for i in range(200)]})
    cli.ok("bind", "FULL-2", "--user", ADMIN)
    target = tiny_disk / "FULL-2.csv"
    result = cli("manifest", "FULL-2", "--user", ADMIN, "--out", target)
    assert result.code == 1
    assert one_clean_line(result.err) == f"error: cannot write the Manifest File to {target}: No space left on device"
    assert list(tiny_disk.iterdir()) == [], "neither the file nor its temporary twin is left"
