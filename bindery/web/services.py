"""What the API's routes and the console's pages both do, written once: a route gives the request's
session (SessionDep) and says the answer as JSON; a page opens its own transaction inside its error
handling and says the outcome in a flash message. Neither calls the other."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi.responses import FileResponse
from sqlmodel import Session
from starlette.background import BackgroundTask

from bindery import binding, manifest
from bindery.access import Action, Actor, owned_batch, refuse_while_on_offer
from bindery.clouds import config
from bindery.clouds.connectors import check_on_add
from bindery.errors import BadInput, FieldError
from bindery.provisioning import service
from bindery.secrets import Secret
from bindery.settings import Settings
from bindery.web.jobs import Job, Jobs


def bind_batch(settings: Settings, jobs: Jobs, actor: Actor, bid: str | None, qr: str | None,
               cloud_api: str | None) -> dict[str, Any]:
    """Bind (by BID or QR text), then provision when an admin picked an API or auto-provision is on.
    The bind commits in its own transaction before the job starts."""
    if bool(bid) == bool(qr):
        raise BadInput("give the BID or the QR text, not both")
    bid = bid.strip() if bid else binding.bid_from_qr(qr or "")
    planned = service.bind_for_provisioning(settings=settings, user=actor.email, bid=bid, cloud_api=cloud_api or None)
    answer: dict[str, Any] = {"bid": planned.outcome.bid, "devices": planned.outcome.devices,
                              "already_bound": planned.outcome.already, "job": None}
    if planned.cloud_api is not None:
        answer["job"] = jobs.start(actor, "provision", planned.outcome.bid, planned.cloud_api,
                                   action=planned.action).public()
    return answer


def start_provision(session: Session, jobs: Jobs, actor: Actor, bid: str, cloud_api: str | None) -> Job:
    """Provision Now: refuse at once what the run would refuse, then start the job."""
    batch, owned = owned_batch(session=session, actor=actor, bid=bid, action=Action.PROVISION)
    refuse_while_on_offer(session=session, batch=batch, doing="provision it")
    if cloud_api:
        config.get_cloud_api(session=session, actor=actor, name=cloud_api, action=Action.PROVISION)
    elif owned.target_cloud_api_id is None:
        raise BadInput("the batch has no target Product Cloud API: give cloud_api")
    session.commit()  # the checks' transaction ends here: the job's run takes its own locks
    return jobs.start(actor, "provision", bid, cloud_api or None)


def accept_transfer(settings: Settings, jobs: Jobs, actor: Actor, code: str) -> dict[str, Any]:
    """Accept (committed in its own transaction), then provision when the receiver's auto-provision is on."""
    planned = service.accept_for_provisioning(settings=settings, user=actor.email, code=code)
    answer: dict[str, Any] = {"bid": planned.accepted.bid, "devices": planned.accepted.devices,
                              "from_account": planned.accepted.from_account, "job": None}
    if planned.cloud_api is not None:
        answer["job"] = jobs.start(actor, "provision", planned.accepted.bid, planned.cloud_api,
                                   action=Action.AUTO_PROVISION).public()
    return answer


def start_deprovision(session: Session, jobs: Jobs, actor: Actor, bid: str, cloud_api: str, forget: bool) -> Job:
    owned_batch(session=session, actor=actor, bid=bid, action=Action.PROVISION)
    config.get_cloud_api(session=session, actor=actor, name=cloud_api, action=Action.PROVISION)
    session.commit()  # as in start_provision
    return jobs.start(actor, "deprovision", bid, cloud_api, forget=forget)


def job_status(session: Session, jobs: Jobs, actor: Actor, job_id: str) -> dict[str, Any]:
    """The job's state with the batch's counters read from the records."""
    job = jobs.get(actor, job_id)
    view = binding.batch_view(session=session, actor=actor, bid=job.bid)
    return {**job.public(), "devices": view["devices"], "provisioned": view["provisioned"]}


def set_target(session: Session, actor: Actor, bid: str, cloud_api: str) -> dict[str, Any]:
    """Change the batch's target (provisions nothing); the batch as it now is."""
    service.set_target(session=session, actor=actor, bid=bid, cloud_api=cloud_api)
    session.flush()
    return binding.batch_view(session=session, actor=actor, bid=bid)


def add_cloud_api(session: Session, settings: Settings, actor: Actor, name: str, kind: str,
                  options: dict[str, str | None], secret: Secret | None, check: bool) -> dict[str, Any]:
    """Store a Product Cloud API, after contacting it when ``check``; it as an admin may see it."""
    api = config.add_cloud_api(session=session, settings=settings, actor=actor, name=name, kind=kind,
                               options=options, secret=secret,
                               check=check_on_add(session=session, settings=settings, name=name) if check else None)
    session.flush()
    return config.public_view(api)


def update_cloud_api(session: Session, settings: Settings, actor: Actor, name: str, kind: str,
                     options: dict[str, str | None], secret: Secret | None, check: bool) -> dict[str, Any]:
    """Change the options given (a secret left out is kept), after contacting the target when ``check``."""
    api = config.get_cloud_api(session=session, actor=actor, name=name)
    if api.kind != kind:
        raise FieldError("kind", f"cannot change ({name} is {api.kind}): remove the API and add it again",
                         joined=False)
    changed = config.update_cloud_api(
        session=session, settings=settings, actor=actor, name=name, options=options, secret=secret,
        check=check_on_add(session=session, settings=settings, name=name) if check else None,
        keep_secret_on_move=False)
    session.flush()
    return config.public_view(changed)


def manifest_file(session: Session, settings: Settings, actor: Actor, bid: str) -> FileResponse:
    """The batch's Manifest File, written to a temporary file removed once sent. The export (and its
    audit record) is committed before the file is handed out; on any failure the file is removed."""
    folder = Path(tempfile.mkdtemp(prefix="manifest-"))
    path = folder / "manifest.csv"

    def clean() -> None:
        path.unlink(missing_ok=True)
        folder.rmdir()

    try:
        report = manifest.export_manifest(session=session, actor=actor, bid=bid, out=str(path),
                                          chunk_size=settings.manifest_chunk_size, recorded_as="download")
        session.commit()
    except BaseException:
        clean()
        raise
    return FileResponse(path, media_type="text/csv", filename=f"{report.bid}-manifest.csv",
                        background=BackgroundTask(clean))
