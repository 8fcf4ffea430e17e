"""Long work started from the console or the API: a Prefect flow run of the deployment when a Prefect
server is configured (PREFECT_API_URL), else a background thread of the web process on the embedded
default. Either way the job's status reads the same counters from the records."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bindery.access import Action, Actor
from bindery.errors import BinderyError, NotFound
from bindery.provisioning import removal, service
from bindery.runs import CONSOLE
from bindery.settings import Settings


@dataclass
class Job:
    id: str
    kind: str
    bid: str
    account_id: int
    cloud_api: str | None
    state: str = "RUNNING"
    done: int = 0
    total: int = 0
    message: str = ""
    flow_run_id: str | None = None
    ui_url: str | None = None
    result: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "bid": self.bid, "cloud_api": self.cloud_api, "state": self.state,
                "chunks_done": self.done, "chunks": self.total, "message": self.message,
                "flow_run_id": self.flow_run_id, "prefect_ui": self.ui_url, **self.result}


DEPLOYMENTS = {"provision": "provision-batch/provision-batch", "deprovision": "deprovision-batch/deprovision-batch",
               "bind-and-provision": "bind-and-provision/bind-and-provision"}


class Jobs:
    """The web process's jobs (in memory: a restarted web process forgets finished ones; the records stay)."""

    def __init__(self, settings: Settings, workers: int = 2):
        self.settings = settings
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bindery-job")

    def get(self, actor: Actor, job_id: str) -> Job:
        with self.lock:
            job = self.jobs.get(job_id)
        if job is None or job.account_id != actor.account_id:
            raise NotFound(f"unknown job {job_id}")
        if job.flow_run_id and job.state not in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            job.state = _flow_run_state(self.settings, job.flow_run_id)
        return job

    def start(self, actor: Actor, kind: str, bid: str, cloud_api: str | None, **options: Any) -> Job:
        job = Job(uuid.uuid4().hex, kind, bid, actor.account_id, cloud_api)
        with self.lock:
            self.jobs[job.id] = job
        if self.settings.prefect_api_url:
            parameters: dict[str, Any]
            if options.get("action") is Action.AUTO_PROVISION:  # a member's bind: the flow re-checks the setting
                kind, parameters = "bind-and-provision", {"bid": bid, "user": actor.email}
            else:
                parameters = {"bid": bid, "cloud_api": cloud_api, "user": actor.email,
                              **{k: v for k, v in options.items() if k != "action"}}
            try:
                job.flow_run_id, job.ui_url = _start_flow_run(self.settings, kind, parameters)
            except BaseException:
                with self.lock:
                    del self.jobs[job.id]
                raise
            job.state = "SCHEDULED"
        else:
            self.pool.submit(self._run, job, actor.email, options)
        return job

    def _run(self, job: Job, email: str, options: dict[str, Any]) -> None:
        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        try:
            if job.kind == "provision":
                report = service.provision_batch(settings=self.settings, user=email, bid=job.bid,
                                                 cloud_api=job.cloud_api, progress=progress,
                                                 action=options.get("action", Action.PROVISION), origin=CONSOLE)
                job.result = {"devices": report.devices, "provisioned": report.provisioned, "failed": report.failed,
                              "not_tried": report.not_tried}
                job.state = "COMPLETED" if report.complete else "FAILED"
                job.message = report.summary()
            else:
                assert job.cloud_api is not None
                removed = removal.deprovision_batch(settings=self.settings, user=email, bid=job.bid,
                                                    cloud_api=job.cloud_api, forget=bool(options.get("forget")),
                                                    origin=CONSOLE)
                job.result = {"removed": removed.removed, "failed": len(removed.failures)}
                job.state = "FAILED" if removed.failures else "COMPLETED"
                job.message = f"{removed.removed} devices removed from {job.cloud_api}"
        except BinderyError as exc:  # read at GET /api/jobs/{id}: in the API's words
            from bindery.web.app import in_body_words

            job.state, job.message = "FAILED", in_body_words(exc)
        except Exception as exc:  # a bug or an outage: the job says so instead of vanishing
            job.state, job.message = "FAILED", f"{exc.__class__.__name__}: {exc}"


@contextmanager
def _prefect_api(settings: Settings) -> Iterator[None]:
    """Prefect's client on the server Bindery's settings name (passed on explicitly: Prefect reads its own
    once, at import), with Prefect's errors said as Bindery's."""
    import httpx
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

    from bindery.prefect_client import prefect_client

    url = settings.prefect_api_url
    try:
        with prefect_client(settings):
            yield
    except ObjectNotFound as exc:
        raise BinderyError(f"the Prefect server at {url} has no such deployment or flow run ({exc}); deploy "
                           "with `make deploy`") from None
    except (PrefectHTTPStatusError, httpx.HTTPError) as exc:
        raise BinderyError(f"the Prefect server at {url} did not answer as expected: {exc}") from None


def _start_flow_run(settings: Settings, kind: str, parameters: dict[str, Any]) -> tuple[str, str]:
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    from bindery.tasks.origin import CONSOLE_TAG, flow_run_link

    with _prefect_api(settings):
        run = run_deployment(DEPLOYMENTS[kind], parameters=parameters, timeout=0, as_subflow=False,
                             tags=[CONSOLE_TAG])
        assert isinstance(run, FlowRun)
        link = flow_run_link(str(run.id))
    return str(run.id), link or ""


def _flow_run_state(settings: Settings, flow_run_id: str) -> str:
    from uuid import UUID

    from prefect.client.orchestration import get_client

    with _prefect_api(settings), get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(flow_run_id)).state
    return state.type.value if state is not None else "SCHEDULED"
