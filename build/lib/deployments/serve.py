"""Serve every deployment from this process, without a work pool (single host): `make serve`.

The same names, descriptions and nightly schedule as prefect.yaml; flow runs execute here.
"""

from __future__ import annotations

from typing import Any

from prefect import serve
from prefect.schedules import Cron


def build() -> list[Any]:
    from flows.bind_batch import bind_batch
    from flows.export_manifest import export_manifest
    from flows.import_reel import import_reel
    from flows.provisioning import bind_and_provision, deprovision_batch, provision_batch, provision_shard
    from flows.reconcile import reconcile

    flows = [import_reel, bind_and_provision, provision_batch, provision_shard, deprovision_batch, export_manifest,
             bind_batch]
    deployments = [f.to_deployment(name=f.name, description=f.description, enforce_parameter_schema=True)
                   for f in flows]
    nightly = Cron("0 2 * * *", timezone="Europe/Berlin")
    deployments.append(reconcile.to_deployment(name="reconcile", description=reconcile.description,
                                               enforce_parameter_schema=True, schedule=nightly))
    return deployments


def main() -> None:
    serve(*build(), limit=4)


if __name__ == "__main__":
    main()
