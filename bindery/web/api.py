"""JSON endpoints mirroring the CLI; every rule is the rules module's, every error the CLI's message."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, ValidationError
from starlette.background import BackgroundTask

from bindery import binding, manifest
from bindery.access import Action, Actor, owned_batch, require
from bindery.clouds import config
from bindery.clouds.connectors import check_on_add
from bindery.db import session_scope
from bindery.errors import BadInput
from bindery.provisioning import service
from bindery.secrets import Secret
from bindery.settings import Settings
from bindery.web.credentials import NotAuthenticated, actor_for_token
from bindery.web.jobs import Jobs

router = APIRouter(prefix="/api", tags=["api"])
bearer = HTTPBearer(auto_error=False, description="A personal API token (`bindery token create`)")
SECRET_FIELDS = ("credentials", "connection_string")


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def jobs_of(request: Request) -> Jobs:
    jobs: Jobs = request.app.state.jobs
    return jobs


def api_actor(request: Request,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Actor:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticated("missing API token: send Authorization: Bearer <token>")
    with session_scope(settings_of(request)) as session:
        return actor_for_token(session=session, token=credentials.credentials)


ActorDep = Annotated[Actor, Depends(api_actor)]


class BindRequest(BaseModel):
    bid: str | None = Field(default=None, max_length=200, description="Product Batch ID")
    qr: str | None = Field(default=None, max_length=2000, description="or the text of the reel's QR code")
    cloud_api: str | None = Field(default=None, max_length=200, description="admins: provision into this API")


class ProvisionRequest(BaseModel):
    cloud_api: str | None = Field(default=None, max_length=200, description="default: the batch's target")


class TargetRequest(BaseModel):
    cloud_api: str = Field(max_length=200)


class DeprovisionRequest(BaseModel):
    cloud_api: str = Field(max_length=200)
    forget: bool = False


class AutoProvisionRequest(BaseModel):
    enabled: bool
    cloud_api: str | None = Field(default=None, max_length=200)


class CloudApiRequest(BaseModel):
    name: str = Field(max_length=200)
    kind: Literal["aws", "azure", "other", "aws-iot", "azure-iot-hub"]
    account_id: str | None = Field(default=None, max_length=200)
    gateway_id: str | None = Field(default=None, max_length=200)
    region: str | None = Field(default=None, max_length=200)
    stage: str | None = Field(default=None, max_length=200)
    interop_url: str | None = Field(default=None, max_length=2000)
    subscription_id: str | None = Field(default=None, max_length=200)
    type: str | None = Field(default=None, max_length=200)
    credentials: str | None = Field(default=None, max_length=2000, description="other: username:password")
    url: str | None = Field(default=None, max_length=2000)
    policy: str | None = Field(default=None, max_length=200)
    thing_prefix: str | None = Field(default=None, max_length=200)
    thing_type: str | None = Field(default=None, max_length=200)
    thing_group: str | None = Field(default=None, max_length=200)
    role_arn: str | None = Field(default=None, max_length=2000)
    endpoint_url: str | None = Field(default=None, max_length=2000)
    connection_string: str | None = Field(default=None, max_length=4000)
    quota: str | None = Field(default=None, max_length=32)
    check: bool = Field(default=True, description="contact the target before storing")


def cloud_api_request(fields: dict[str, Any]) -> CloudApiRequest:
    """The console form's fields held to the API's own limits (one model for both)."""
    try:
        return CloudApiRequest.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = first["loc"][-1] if first["loc"] else "form"
        raise BadInput(f"{field}: {first['msg']}") from None


def cloud_api_options(kind: str, body: dict[str, Any]) -> tuple[dict[str, str | None], Secret | None]:
    """The add form's fields as the CLI's options, and its secret taken literally: the web never reads a
    file or a variable for a caller (" @/etc/passwd" is a password of those characters)."""
    options = {k: (str(v) if v not in (None, "") else None) for k, v in body.items()
               if k not in ("name", "kind", "check", *SECRET_FIELDS)}
    raw = config.pick_secret(kind, {field: body.get(field) for field in SECRET_FIELDS})
    return options, (Secret(str(raw)) if raw is not None else None)


def add_cloud_api(settings: Settings, actor: Actor, name: str, kind: str, options: dict[str, str | None],
                  secret: Secret | None, check: bool) -> dict[str, Any]:
    with session_scope(settings) as session:
        api = config.add_cloud_api(session=session, settings=settings, actor=actor, name=name, kind=kind,
                                   options=options, secret=secret,
                                   check=check_on_add(session=session, settings=settings, name=name) if check else None)
        session.flush()
        return config.public_view(api)


def bind_batch(settings: Settings, jobs: Jobs, actor: Actor, bid: str | None, qr: str | None,
               cloud_api: str | None) -> dict[str, Any]:
    """Bind (by BID or QR text), then provision when an admin picked an API or auto-provision is on."""
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


@router.get("/me", summary="The acting user")
def me(actor: ActorDep) -> dict[str, Any]:
    return {"email": actor.email, "role": actor.role.value, "account": actor.account_name}


@router.get("/batches", summary="Your account's batches with bound and per-target provisioned counters")
def list_batches(request: Request, actor: ActorDep) -> list[dict[str, Any]]:
    with session_scope(settings_of(request)) as session:
        return binding.account_batches(session=session, actor=actor)


@router.get("/batches/{bid}", summary="One of your account's batches")
def show_batch(request: Request, actor: ActorDep, bid: str) -> dict[str, Any]:
    with session_scope(settings_of(request)) as session:
        return binding.batch_view(session=session, actor=actor, bid=bid)


@router.get("/batches/{bid}/devices", summary="The batch's devices per Product Cloud API, keyset-paged",
            response_model=None)
def list_devices(request: Request, actor: ActorDep, bid: str,
                 cloud_api: Annotated[str | None, Query(max_length=200)] = None,
                 state: Annotated[str | None, Query(alias="status", max_length=16)] = None,
                 after: Annotated[str | None, Query(max_length=64)] = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                 failed_first: bool = False) -> Response | dict[str, Any]:
    """JSON ``{"devices": [...], "next": cursor}``, or one page as CSV with ``Accept: text/csv`` (the next
    cursor in the ``X-Next-After`` header). ``failed_first``: the failed devices, then the others."""
    from bindery.provisioning.devices import COLUMNS, device_page

    with session_scope(settings_of(request)) as session:
        page = device_page(session=session, actor=actor, bid=bid, cloud_api=cloud_api, status=state, after=after,
                           limit=limit, failed_first=failed_first)
    if "text/csv" in request.headers.get("accept", ""):
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(page.rows)
        return Response(out.getvalue(), media_type="text/csv",
                        headers={"X-Next-After": page.next_after} if page.next_after else None)
    return {"devices": page.rows, "next": page.next_after}


@router.post("/batches", status_code=status.HTTP_201_CREATED, summary="Bind a batch (by BID or QR text)")
def bind(request: Request, actor: ActorDep, body: BindRequest) -> dict[str, Any]:
    return bind_batch(settings_of(request), jobs_of(request), actor, body.bid, body.qr, body.cloud_api)


@router.delete("/batches/{bid}", status_code=status.HTTP_204_NO_CONTENT, summary="Unbind a batch (admins)")
def unbind(request: Request, actor: ActorDep, bid: str) -> Response:
    with session_scope(settings_of(request)) as session:
        binding.unbind(session=session, actor=actor, bid=bid)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/batches/{bid}/provision", status_code=status.HTTP_202_ACCEPTED, summary="Provision Now (admins)")
def provision(request: Request, actor: ActorDep, bid: str, body: ProvisionRequest) -> dict[str, Any]:
    with session_scope(settings_of(request)) as session:  # refuse at once what the run would refuse
        _batch, owned = owned_batch(session=session, actor=actor, bid=bid, action=Action.PROVISION)
        if body.cloud_api:
            config.get_cloud_api(session=session, actor=actor, name=body.cloud_api, action=Action.PROVISION)
        elif owned.target_cloud_api_id is None:
            raise BadInput("the batch has no target Product Cloud API: give cloud_api")
    return jobs_of(request).start(actor, "provision", bid, body.cloud_api).public()


@router.put("/batches/{bid}/target", summary="Change the batch's Product Cloud API (admins); provisions nothing")
def set_target(request: Request, actor: ActorDep, bid: str, body: TargetRequest) -> dict[str, Any]:
    with session_scope(settings_of(request)) as session:
        service.set_target(session=session, actor=actor, bid=bid, cloud_api=body.cloud_api)
        session.flush()
        return binding.batch_view(session=session, actor=actor, bid=bid)


@router.post("/batches/{bid}/deprovision", status_code=status.HTTP_202_ACCEPTED,
             summary="Remove the batch's devices from a Product Cloud API (admins)")
def deprovision(request: Request, actor: ActorDep, bid: str, body: DeprovisionRequest) -> dict[str, Any]:
    with session_scope(settings_of(request)) as session:
        owned_batch(session=session, actor=actor, bid=bid, action=Action.PROVISION)
        config.get_cloud_api(session=session, actor=actor, name=body.cloud_api, action=Action.PROVISION)
    return jobs_of(request).start(actor, "deprovision", bid, body.cloud_api, forget=body.forget).public()


@router.get("/batches/{bid}/manifest", summary="The batch's Manifest File as CSV (admins)",
            response_class=FileResponse, responses={200: {"content": {"text/csv": {}}}})
def download_manifest(request: Request, actor: ActorDep, bid: str) -> FileResponse:
    return manifest_response(settings_of(request), actor, bid)


def manifest_response(settings: Settings, actor: Actor, bid: str) -> FileResponse:
    folder = Path(tempfile.mkdtemp(prefix="manifest-"))
    path = folder / "manifest.csv"
    try:
        with session_scope(settings) as session:
            report = manifest.export_manifest(session=session, actor=actor, bid=bid, out=str(path),
                                              chunk_size=settings.manifest_chunk_size)
    except BaseException:
        path.unlink(missing_ok=True)
        folder.rmdir()
        raise

    def clean() -> None:
        path.unlink(missing_ok=True)
        folder.rmdir()

    return FileResponse(path, media_type="text/csv", filename=f"{report.bid}-manifest.csv",
                        background=BackgroundTask(clean))


@router.get("/jobs/{job_id}", summary="Progress and counters of a provisioning job")
def job_status(request: Request, actor: ActorDep, job_id: str) -> dict[str, Any]:
    job = jobs_of(request).get(actor, job_id)
    with session_scope(settings_of(request)) as session:
        view = binding.batch_view(session=session, actor=actor, bid=job.bid)
    return {**job.public(), "devices": view["devices"], "provisioned": view["provisioned"]}


@router.get("/cloud-apis", summary="Your account's Product Cloud APIs, secrets redacted")
def list_cloud_apis(request: Request, actor: ActorDep) -> list[dict[str, Any]]:
    with session_scope(settings_of(request)) as session:
        return [config.public_view(api) for api in config.list_cloud_apis(session=session, actor=actor)]


@router.post("/cloud-apis", status_code=status.HTTP_201_CREATED, summary="Add a Product Cloud API (admins)")
def create_cloud_api(request: Request, actor: ActorDep, body: CloudApiRequest) -> dict[str, Any]:
    require(actor, Action.CONFIGURE_CLOUD_API)
    options, secret = cloud_api_options(body.kind, body.model_dump())
    return add_cloud_api(settings_of(request), actor, body.name, body.kind, options, secret, body.check)


@router.get("/cloud-apis/{name}", summary="One Product Cloud API, secret redacted")
def show_cloud_api(request: Request, actor: ActorDep, name: str) -> dict[str, Any]:
    with session_scope(settings_of(request)) as session:
        return config.public_view(config.get_cloud_api(session=session, actor=actor, name=name))


@router.delete("/cloud-apis/{name}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Remove a Product Cloud API (admins)")
def remove_cloud_api(request: Request, actor: ActorDep, name: str) -> Response:
    with session_scope(settings_of(request)) as session:
        config.remove_cloud_api(session=session, actor=actor, name=name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/settings/auto-provision", summary="The account's auto-provision setting")
def get_auto_provision(request: Request, actor: ActorDep) -> dict[str, Any]:
    with session_scope(settings_of(request)) as session:
        current = service.account_settings(session=session, actor=actor)
    return {"enabled": current.enabled, "cloud_api": current.cloud_api}


@router.put("/settings/auto-provision", summary="Turn auto-provision on (with a default API) or off (admins)")
def put_auto_provision(request: Request, actor: ActorDep, body: AutoProvisionRequest) -> dict[str, Any]:
    with session_scope(settings_of(request)) as session:
        current = service.set_auto_provision(session=session, actor=actor, enabled=body.enabled,
                                             cloud_api=body.cloud_api or None)
    return {"enabled": current.enabled, "cloud_api": current.cloud_api}
