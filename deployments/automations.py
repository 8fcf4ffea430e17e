"""The Prefect automations that make a lost provisioning run recover without a person (made by `bindery
deploy`, `bindery automations` and `make deploy`; a self-hosted Prefect server ships none of them):

- ``bindery-zombies``: a Bindery flow run that sent a heartbeat, then neither another one nor a final
  state within BINDERY_ZOMBIE_SECONDS, is marked Crashed (Prefect's "detect zombie flows" recipe,
  limited to Bindery's flows). It catches what no process is left to report: a worker killed with its
  flow runs, a host lost. A worker that outlives its flow run's process marks it Crashed itself.
- ``bindery-recovery``: every Crashed run of a provisioning flow starts the ``recover-crashed-run``
  deployment with that run's id (bindery.recovery decides whether and when it runs again).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bindery.recovery import RESTARTED_FLOWS
from bindery.settings import Settings

ZOMBIES = "bindery-zombies"
RECOVERY = "bindery-recovery"
RECOVER_DEPLOYMENT = "recover-crashed-run/recover-crashed-run"
BINDERY_FLOWS = ("import-reel", "bind-and-provision", "provision-batch", "provision-shard", "deprovision-batch",
                 "export-manifest", "bind-batch", "reconcile", "recover-crashed-run")


def save(automation: Any) -> str:
    """Create the automation, or update the one of the same name (a second deploy changes nothing);
    returns its id."""
    from prefect.automations import Automation

    try:
        existing: Automation | None = Automation.read(name=automation.name)  # type: ignore[assignment]  # sync
    except ValueError:
        existing = None
    if existing is None:
        created: Automation = automation.create()
        return str(created.id)
    automation.id = existing.id
    automation.update()
    return str(existing.id)


def _flows(names: tuple[str, ...]) -> Any:
    from prefect.events.schemas.events import ResourceSpecification

    return ResourceSpecification({"prefect.resource.role": "flow", "prefect.resource.name": list(names)})


def zombie_automation(settings: Settings) -> Any:
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    return Automation(
        name=ZOMBIES,
        description=f"Bindery: a flow run silent for {settings.zombie_seconds} s (no heartbeat, no final state) "
                    "is marked Crashed",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"}, expect={"prefect.flow-run.*"},
            match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
            match_related=_flows(BINDERY_FLOWS),
            for_each={"prefect.resource.id"}, posture=Posture.Proactive, threshold=1,
            within=timedelta(seconds=settings.zombie_seconds)),
        actions=[ChangeFlowRunState(state=StateType.CRASHED, name="Crashed",
                                    message=f"no heartbeat for {settings.zombie_seconds} s: its process was lost")])


def recovery_automation(deployment_id: str) -> Any:
    from prefect.automations import Automation
    from prefect.events.actions import RunDeployment
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    return Automation(
        name=RECOVERY, description="Bindery: a crashed provisioning run is started again (or alerted)",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Crashed"},
            match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
            match_related=_flows(RESTARTED_FLOWS), posture=Posture.Reactive, threshold=1, within=timedelta(0)),
        actions=[RunDeployment(source="selected", deployment_id=deployment_id,
                               parameters={"flow_run_id": {"__prefect_kind": "jinja",
                                                           "template": "{{ event.resource.id }}"}})])


def install(settings: Settings) -> tuple[str, str]:
    """Both automations, made or updated; the ids of bindery-zombies and bindery-recovery. The
    recover-crashed-run deployment must exist (`bindery deploy` or `prefect deploy --all` made it)."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    from bindery.errors import BadInput

    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(RECOVER_DEPLOYMENT)
        except ObjectNotFound:
            raise BadInput(f"no deployment {RECOVER_DEPLOYMENT} on the Prefect server: run `bindery deploy` "
                           "(or `make deploy`) first") from None
    return save(zombie_automation(settings)), save(recovery_automation(str(deployment.id)))
