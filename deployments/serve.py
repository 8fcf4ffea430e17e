"""Bindery's deployments from the installed code: the same names, descriptions, parameter schemas and
nightly schedule as prefect.yaml (a test keeps the two alike).

`bindery deploy` registers them on a work pool with module-path entrypoints (`bindery.flows.…`), so a
worker runs the installed package — no clone, no pull step; `bindery serve` (or `make serve`) serves them
from one process without a pool.
"""

from __future__ import annotations

from typing import Any

from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.schedules import Cron

NIGHTLY_RECONCILE = Cron("0 2 * * *", timezone="Europe/Berlin")


def build(*, work_pool: str | None = None, work_queue: str | None = None,
          module_paths: bool = False) -> list[RunnerDeployment]:
    from bindery.flows.bind_batch import bind_batch
    from bindery.flows.export_manifest import export_manifest
    from bindery.flows.import_reel import import_reel
    from bindery.flows.provisioning import bind_and_provision, deprovision_batch, provision_batch, provision_shard
    from bindery.flows.reconcile import reconcile
    from bindery.flows.recovery import recover_crashed_run

    flows: list[Any] = [import_reel, bind_and_provision, provision_batch, provision_shard, deprovision_batch,
                        export_manifest, bind_batch, reconcile, recover_crashed_run]
    where: dict[str, Any] = {"work_pool_name": work_pool, "work_queue_name": work_queue} if work_pool else {}
    if module_paths:
        where["entrypoint_type"] = EntrypointType.MODULE_PATH
    return [f.to_deployment(name=f.name, description=f.description, enforce_parameter_schema=True,
                            schedule=NIGHTLY_RECONCILE if f is reconcile else None, **where) for f in flows]


def deploy_all(*, work_pool: str, work_queue: str | None = None) -> list[str]:
    """Create or update every deployment on ``work_pool`` (idempotent: same names, same ids)."""
    from prefect import deploy

    ids: Any = deploy(*build(work_pool=work_pool, work_queue=work_queue, module_paths=True), work_pool_name=work_pool,
                 build=False, push=False, print_next_steps_message=False, ignore_warnings=True)
    return [str(i) for i in ids]


def main() -> None:
    """Every deployment served from this process, its flow runs sending heartbeats every
    BINDERY_HEARTBEAT_SECONDS (so the zombie automation can tell a lost run from a slow one)."""
    from prefect import serve

    from bindery.settings import get_settings

    serve(*build(), limit=4, heartbeat_seconds=get_settings().heartbeat_seconds)


if __name__ == "__main__":
    main()
