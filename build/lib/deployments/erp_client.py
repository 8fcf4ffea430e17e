"""How an ERP system starts Bindery work over Prefect's REST API (a small httpx client).

1. Look up the deployment by ``flow-name/deployment-name``: ``GET /api/deployments/name/{flow}/{deployment}``.
2. ``POST /api/deployments/{id}/create_flow_run`` with the parameters and an ``idempotency_key``. Prefect
   makes keys unique per *flow*, not per deployment, so the key is prefixed with the deployment: a
   repeated ERP message returns the same flow run instead of starting a second one.
3. Poll ``GET /api/flow_runs/{id}`` until the state is final.

Every call is retried on 429, 5xx and connection errors — a Prefect server on SQLite answers 503
("database is locked") under load — with exponential backoff and full jitter, at least Retry-After,
a bounded number of times; the create call keeps its idempotency key, which is what makes retrying it
safe. Any other 4xx stops at once with the server's message.
Basic auth when the server sets ``PREFECT_SERVER_API_AUTH_STRING`` (the client gets ``user:password``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from bindery.clouds.interop import retry_after  # the one reading of Retry-After (seconds or a date)

FINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
RETRIED_STATUS = {429, 500, 502, 503, 504}


class ErpError(Exception):
    """A call Prefect refused (a 4xx other than 429), or one still failing after every retry."""


@dataclass(frozen=True)
class FlowRun:
    id: str
    state: str
    message: str | None


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_seconds: float = 0.5
    max_seconds: float = 30.0

    def delay(self, attempt: int, server_wait: float | None) -> float:
        """Full jitter over an exponential cap, never shorter than the server's Retry-After."""
        backoff = random.uniform(0, min(self.max_seconds, self.base_seconds * 2 ** attempt))
        return max(backoff, min(server_wait or 0.0, self.max_seconds * 4))


def server_message(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    return f"{response.request.method} {response.request.url.path}: {response.status_code} {str(detail)[:300]}"


def send_with_retries(send: Callable[[], httpx.Response], policy: RetryPolicy,
                      sleep: Callable[[float], None] = time.sleep) -> httpx.Response:
    """``send()`` until it succeeds, a 4xx other than 429 stops it, or the attempts run out."""
    for attempt in range(policy.attempts):
        last = attempt == policy.attempts - 1
        try:
            response = send()
        except httpx.TransportError as exc:
            if last:
                raise ErpError(f"Prefect API unreachable after {policy.attempts} attempts: {exc!r}") from None
            sleep(policy.delay(attempt, None))
            continue
        if response.status_code < 400:
            return response
        if response.status_code not in RETRIED_STATUS:
            raise ErpError(server_message(response))
        if last:
            raise ErpError(f"{server_message(response)} (after {policy.attempts} attempts)")
        sleep(policy.delay(attempt, retry_after(response)))
    raise AssertionError("unreachable")


class ErpClient:
    def __init__(self, api_url: str, auth: str | None = None, timeout: float = 30.0,
                 policy: RetryPolicy | None = None):
        basic = tuple(auth.split(":", 1)) if auth else None
        self.http = httpx.Client(base_url=api_url.rstrip("/") + "/", auth=basic, timeout=timeout)  # type: ignore[arg-type]
        self.policy = policy or RetryPolicy()

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return send_with_retries(lambda: self.http.request(method, path, **kwargs), self.policy).json()

    def deployment_id(self, flow_name: str, deployment_name: str) -> str:
        return str(self._call("GET", f"deployments/name/{flow_name}/{deployment_name}")["id"])

    def start(self, flow_name: str, deployment_name: str, parameters: dict[str, Any], message_id: str) -> FlowRun:
        """Start a run for an ERP message; the same ``message_id`` again returns the same run."""
        deployment = self.deployment_id(flow_name, deployment_name)
        return self._run(self._call("POST", f"deployments/{deployment}/create_flow_run", json={
            "parameters": parameters, "idempotency_key": f"{flow_name}/{deployment_name}:{message_id}"}))

    def get(self, flow_run_id: str) -> FlowRun:
        return self._run(self._call("GET", f"flow_runs/{flow_run_id}"))

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
