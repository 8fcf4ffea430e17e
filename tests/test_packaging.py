"""Bindery as a user installs it: the wheel, in a fresh venv outside the repository, used from an empty folder.

The wheel is installed without an editable link; its dependencies are borrowed from the test environment
through a .pth file (installing Prefect and friends again would only test PyPI)."""

from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bindery.deployments.local_cluster import AUTH, free_port
from bindery.deployments.local_cluster import prefect_server as running_server

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Installed:
    wheel: Path
    bin: Path
    folder: Path

    def env(self, **extra: str) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("BINDERY_", "PREFECT_", "VIRTUAL_ENV"))}
        return {**clean, "PATH": f"{self.bin}:{clean.get('PATH', '')}", **extra}

    def run(self, *args: str, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bin / "bindery"), *args], cwd=self.folder, env=self.env(**extra),
                              capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    out = tmp_path_factory.mktemp("wheel")
    source = tmp_path_factory.mktemp("source") / "bindery"  # a copy: the build writes build/ beside the sources
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv", ".git", ".bindery", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "tests", "docs"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = out.glob("bindery-*.whl")
    venv = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    (own,) = (venv / "lib").glob("python3.*/site-packages")
    (own / "borrowed-dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True,
                   capture_output=True, timeout=300)
    folder = tmp_path_factory.mktemp("empty-folder")
    return Installed(wheel, venv / "bin", folder)


def test_the_wheel_adds_exactly_one_top_level_package_with_its_data(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.startswith("bindery-")} == {"bindery"}
    for data in ("bindery/web/static/style.css", "bindery/web/templates/login.html", "bindery/migrations/env.py",
                 "bindery/migrations/versions/0001_catalog.py", "bindery/migrations/script.py.mako",
                 "bindery/anchors/microchip/Microchip_Crypto_Authentication_Root_CA_002.crt",
                 "bindery/flows/provisioning.py", "bindery/deployments/serve.py", "bindery/models/catalog.py"):
        assert data in names, data


def test_installed_code_is_what_runs(installed: Installed) -> None:
    where = subprocess.run([str(installed.bin / "python"), "-c", "import bindery, bindery.flows; "
                            "print(bindery.__file__); print(bindery.flows.__file__)"], cwd=installed.folder,
                           env=installed.env(), capture_output=True, text=True, check=True).stdout.split()
    assert all("site-packages" in path and str(ROOT) not in path for path in where), where


def test_version_doctor_and_demo_from_an_empty_folder(installed: Installed) -> None:
    version = installed.run("--version")
    assert version.returncode == 0 and re.fullmatch(r"bindery \d+\.\d+\.\d+\n", version.stdout)
    fresh = installed.run("doctor")
    assert fresh.returncode == 1 and "fix: bindery db upgrade" in fresh.stdout and "Traceback" not in fresh.stderr
    demo = installed.run("demo", timeout=600)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-3000:]
    assert "1000 devices provisioned" in demo.stdout and "0. Prefect" in demo.stdout
    healthy = installed.run("doctor")
    assert healthy.returncode == 0, healthy.stdout
    assert (installed.folder / ".bindery" / "bindery.db").exists()


@pytest.fixture
def console(installed: Installed) -> Iterator[str]:
    assert installed.run("db", "upgrade").returncode == 0
    port = free_port()
    web = subprocess.Popen([str(installed.bin / "bindery"), "web", "--port", str(port)], cwd=installed.folder,
                           env=installed.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{url}/login", timeout=2)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline and web.poll() is None, web.stdout.read() if web.stdout else ""
            time.sleep(0.3)
    yield url
    web.terminate()
    web.wait(timeout=30)


def test_console_serves_its_pages_and_stylesheet(console: str) -> None:
    login = httpx.get(f"{console}/login")
    assert login.status_code == 200 and '<link rel="stylesheet" href="/static/style.css">' in login.text
    style = httpx.get(f"{console}/static/style.css")
    assert style.status_code == 200 and ".counter" in style.text


def test_deploy_from_the_installed_package_is_idempotent(installed: Installed,
                                                         tmp_path_factory: pytest.TempPathFactory) -> None:
    with running_server(tmp_path_factory.mktemp("prefect-installed"), deploy=False) as server:
        env = {"PREFECT_API_URL": server["PREFECT_API_URL"], "PREFECT_API_AUTH_STRING": AUTH,
               "PREFECT_HOME": str(tmp_path_factory.mktemp("prefect-home"))}
        first = installed.run("deploy", "--pool", "installed", "--work-queue", "erp", **env)
        again = installed.run("deploy", "--pool", "installed", "--work-queue", "erp", **env)
        auth = tuple(AUTH.split(":", 1))
        listed = httpx.post(f"{server['PREFECT_API_URL']}/deployments/filter", json={}, auth=auth).json()  # type: ignore[arg-type]
    assert first.returncode == 0, first.stdout + first.stderr
    assert again.returncode == 0 and again.stdout.count("deployed ") == 9
    assert "automations: bindery-zombies (" in first.stdout, "crash recovery comes with the deployments"
    ids = lambda out: sorted(re.findall(r"\(([0-9a-f-]{36})\)", out))  # noqa: E731
    assert ids(first.stdout) == ids(again.stdout), "deploying again updates the same deployments"
    assert {d["name"] for d in listed} == {"import-reel", "bind-and-provision", "provision-batch", "provision-shard",
                                           "deprovision-batch", "export-manifest", "bind-batch", "reconcile",
                                           "recover-crashed-run"}
    assert all(d["entrypoint"].startswith("bindery.flows.") and d["work_pool_name"] == "installed"
               and d["work_queue_name"] == "erp" and d["enforce_parameter_schema"] for d in listed)
    assert all(d["pull_steps"] in (None, []) for d in listed), "no clone, no pull step"
    nightly = next(d for d in listed if d["name"] == "reconcile")["schedules"]
    assert nightly and nightly[0]["schedule"]["cron"] == "0 2 * * *"
