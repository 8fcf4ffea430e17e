"""How an ERP system starts Bindery work over Prefect's REST API (a small httpx client).

1. Look up the deployment by ``flow-name/deployment-name``: ``GET /api/deployments/name/{flow}/{deployment}``.
2. ``POST /api/deployments/{id}/create_flow_run`` with the parameters and an ``idempotency_key``. Prefect
   makes keys unique per *flow*, not per deployment, so the key is prefixed with the deployment: a
   repeated ERP message returns the same flow run instead of starting a second one.
3. Poll ``GET /api/flow_runs/{id}`` until the state is final.
Basic auth when the server sets ``PREFECT_SERVER_API_AUTH_STRING`` (the client gets ``user:password``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

FINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@dataclass(frozen=True)
class FlowRun:
    id: str
    state: str
    message: str | None


class ErpClient:
    def __init__(self, api_url: str, auth: str | None = None, timeout: float = 30.0):
        basic = tuple(auth.split(":", 1)) if auth else None
        self.http = httpx.Client(base_url=api_url.rstrip("/") + "/", auth=basic, timeout=timeout)  # type: ignore[arg-type]

    def close(self) -> None:
        self.http.close()

    def deployment_id(self, flow_name: str, deployment_name: str) -> str:
        response = self.http.get(f"deployments/name/{flow_name}/{deployment_name}")
        response.raise_for_status()
        return str(response.json()["id"])

    def start(self, flow_name: str, deployment_name: str, parameters: dict[str, Any], message_id: str) -> FlowRun:
        """Start a run for an ERP message; the same ``message_id`` again returns the same run."""
        deployment = self.deployment_id(flow_name, deployment_name)
        response = self.http.post(f"deployments/{deployment}/create_flow_run", json={
            "parameters": parameters, "idempotency_key": f"{flow_name}/{deployment_name}:{message_id}"})
        response.raise_for_status()
        return self._run(response.json())

    def get(self, flow_run_id: str) -> FlowRun:
        response = self.http.get(f"flow_runs/{flow_run_id}")
        response.raise_for_status()
        return self._run(response.json())

    def wait(self, flow_run_id: str, timeout: float = 600, every: float = 2.0) -> FlowRun:
        deadline = time.monotonic() + timeout
        while True:
            run = self.get(flow_run_id)
            if run.state in FINAL_STATES or time.monotonic() > deadline:
                return run
            time.sleep(every)

    @staticmethod
    def _run(body: dict[str, Any]) -> FlowRun:
        state = body.get("state") or {}
        return FlowRun(str(body["id"]), str(state.get("type", "SCHEDULED")), state.get("message"))
