"""Shards as Prefect flow runs of the `provision-shard` deployment, linked under the parent run."""

from __future__ import annotations

from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.states import Crashed

from bindery.errors import BinderyError
from bindery.provisioning.run import RunPlan
from bindery.provisioning.shards import RunSeen, ShardState
from bindery.settings import get_settings


class PrefectLauncher:
    """``Launcher`` over Prefect: any worker of the deployment's pool picks a shard up."""

    def __init__(self, deployment: str | None = None):
        self.deployment = deployment or get_settings().shard_deployment

    def launch(self, plan: RunPlan, shard: ShardState) -> str:
        try:
            run = run_deployment(self.deployment, timeout=0, as_subflow=True,
                                 flow_run_name=f"{plan.bid}-{plan.api_name}-shard-{shard.shard}",
                                 parameters={"bid": plan.bid, "cloud_api": plan.api_name, "user": plan.user,
                                             "shard": shard.shard})
        except ObjectNotFound as exc:
            raise BinderyError(f"sharded runs need the {self.deployment} deployment on a Prefect server "
                               "(prefect deploy --all, see README 'Scaling')") from exc
        assert isinstance(run, FlowRun)
        return str(run.id)

    def seen(self, run_id: str) -> RunSeen:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(UUID(run_id)).state
        if state is None:
            return RunSeen(ended=False)
        if state.is_final():
            return RunSeen(ended=True)
        return RunSeen(ended=False, taken_since=state.timestamp if state.is_pending() or state.is_running() else None)

    def abandon(self, run_id: str, reason: str) -> None:
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(UUID(run_id), Crashed(message=reason), force=True)
