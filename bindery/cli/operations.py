"""`bindery deploy`, `bindery automations`, `bindery worker`, `bindery serve`: running an installed Bindery
with a Prefect server."""

from __future__ import annotations

import os
import sys
from contextlib import suppress
from pathlib import Path
from typing import Annotated

import typer

from bindery.cli.common import console
from bindery.errors import BadInput
from bindery.settings import Settings, child_environment, get_settings

PoolOption = Annotated[str, typer.Option("--pool", help="Prefect work pool (a process pool; made if missing).")]


def _prefect_server(settings: Settings) -> str:
    url = settings.prefect_api_url
    if not url:
        raise BadInput("set PREFECT_API_URL to your Prefect server's API (and PREFECT_API_AUTH_STRING if it has "
                       "auth); see docs/operations/deployments.md")
    return url


def _ensure_pool(pool: str) -> None:
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    with get_client(sync_client=True) as client, suppress(ObjectAlreadyExists):
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"))


def deploy(pool: PoolOption = "bindery",
           work_queue: Annotated[str | None, typer.Option("--work-queue", help="Work queue of the pool.")] = None,
           ) -> None:
    """Register every Bindery deployment (as prefect.yaml defines them) from the installed code; idempotent."""
    from bindery.deployments.serve import build, deploy_all
    from bindery.prefect_client import prefect_client

    settings = get_settings()
    url = _prefect_server(settings)
    with prefect_client(settings):
        _ensure_pool(pool)
        ids = deploy_all(work_pool=pool, work_queue=work_queue)
    for deployment, deployment_id in zip(build(), ids, strict=True):
        console().print(f"deployed {deployment.flow_name}/{deployment.name} ({deployment_id}) on pool {pool}")
    console().print(f"{len(ids)} deployments on {url}; start workers with `bindery worker --pool {pool}`")
    automations()
    alerts()


def automations() -> None:
    """Make (or update) the automations that mark a silent flow run Crashed and start a crashed
    provisioning run again (`bindery deploy` does this too)."""
    from bindery.deployments.automations import RECOVERY, ZOMBIES, install
    from bindery.prefect_client import prefect_client

    settings = get_settings()
    _prefect_server(settings)
    with prefect_client(settings):
        zombies, recovery = install(settings)
    console().print(f"automations: {ZOMBIES} ({zombies}) marks a flow run Crashed after {settings.zombie_seconds} s "
                    f"without a heartbeat; {RECOVERY} ({recovery}) starts a crashed provisioning run again, "
                    f"at most {settings.crash_restarts} times")


def alerts() -> None:
    """Send failed provisioning runs and drift found to BINDERY_ALERT_WEBHOOK_URL (a Prefect automation
    with a webhook block; `bindery deploy` does this too)."""
    from bindery.deployments.alerts import install
    from bindery.prefect_client import prefect_client

    settings = get_settings()
    _prefect_server(settings)
    webhook = (settings.alert_webhook_url or "").strip()
    if not webhook:
        console().print("alerts: BINDERY_ALERT_WEBHOOK_URL is not set, no alert automation made")
        return
    with prefect_client(settings):
        automation = install(webhook)
    console().print(f"alerts: automation bindery-alerts ({automation}) sends failed runs and drift to the webhook")


def worker(pool: PoolOption = "bindery",
           limit: Annotated[int, typer.Option(help="Flow runs at once.")] = 4) -> None:
    """A Prefect process worker for the pool (this process becomes the worker); its flow runs send a
    heartbeat every BINDERY_HEARTBEAT_SECONDS."""
    settings = get_settings()
    _prefect_server(settings)
    prefect = str(Path(sys.executable).parent / "prefect")
    os.execve(prefect, [prefect, "worker", "start", "--pool", pool, "--type", "process", "--limit", str(limit)],
              child_environment(settings, overrides={
                  "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(settings.heartbeat_seconds)}))


def serve() -> None:
    """Serve every deployment from this process, without a work pool (a single host)."""
    from bindery.deployments.serve import main
    from bindery.prefect_client import prefect_client

    with prefect_client(get_settings()):
        main()
