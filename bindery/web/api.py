"""JSON endpoints mirroring the CLI; every rule is the rules module's, every error the CLI's message."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from bindery import binding, split, transfer
from bindery.access import Action, require
from bindery.clouds import config
from bindery.models.accounts import BindingPublic, UserPublic
from bindery.models.clouds import CloudApiPublic
from bindery.models.provisioning import AccountSettingsPublic
from bindery.models.transfers import TransferOfferPublic, TransferPublic
from bindery.provisioning import service
from bindery.web import cloudapis, services
from bindery.web.deps import ActorDep, JobsDep, SessionDep, SettingsDep, api_actor, bearer, jobs_of, settings_of
from bindery.web.schemas import (
    ERRORS,
    TOO_MANY_CODES,
    AcceptResultPublic,
    BindResultPublic,
    DevicePagePublic,
    JobPublic,
    JobStatusPublic,
    SplitResultPublic,
)

__all__ = ["ActorDep", "api_actor", "bearer", "jobs_of", "router", "settings_of"]

router = APIRouter(prefix="/api", tags=["api"], responses=ERRORS)


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


class TransferRequest(BaseModel):
    to_account: str = Field(max_length=64, description="the receiving account")
    expires: str = Field(default=transfer.DEFAULT_EXPIRY, max_length=16, description="the code's life: 30m, 12h, "
                         "7d (at most 90d)")
    note: str | None = Field(default=None, max_length=500, description="a note the receiver sees with the offer")


class AcceptRequest(BaseModel):
    code: str = Field(max_length=100, description="the transfer code the giver handed over")


class SplitRequest(BaseModel):
    new_bid: str = Field(max_length=64, description="BID of the new batch: this batch's BID, '-' or '_', then a "
                         "suffix (W001-2)")
    count: int | None = Field(default=None, ge=1, description="move the first N devices in device-id order")
    devices: list[Annotated[str, Field(max_length=128)]] | None = Field(
        default=None, max_length=100_000, description="or move these device ids")


CloudApiRequest = cloudapis.CloudApiCreate


def cloud_api_request(fields: dict[str, Any]) -> BaseModel:
    """The console form's fields held to the API's own limits (one model for both)."""
    return cloudapis.parse(fields)


@router.get("/me", summary="The acting user")
def me(actor: ActorDep) -> UserPublic:
    return UserPublic(email=actor.email, role=actor.role.value, account=actor.account_name)


@router.get("/batches", summary="Your account's batches with bound and per-target provisioned counters")
def list_batches(session: SessionDep, actor: ActorDep) -> list[BindingPublic]:
    return [BindingPublic.model_validate(view) for view in binding.account_batches(session=session, actor=actor)]


@router.get("/batches/{bid}", summary="One of your account's batches")
def show_batch(session: SessionDep, actor: ActorDep, bid: str) -> BindingPublic:
    return BindingPublic.model_validate(binding.batch_view(session=session, actor=actor, bid=bid))


@router.get("/batches/{bid}/devices", summary="The batch's devices per Product Cloud API, keyset-paged",
            response_model=DevicePagePublic, responses={200: {
                "content": {"text/csv": {"schema": {"type": "string"}}},
                "headers": {"X-Next-After": {"required": False, "schema": {"type": "string"},
                                             "description": "CSV: the next page's cursor (absent on the last)"}}}})
def list_devices(request: Request, session: SessionDep, actor: ActorDep, bid: str,
                 cloud_api: Annotated[str | None, Query(max_length=200)] = None,
                 state: Annotated[str | None, Query(alias="status", max_length=16)] = None,
                 after: Annotated[str | None, Query(max_length=64)] = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                 failed_first: bool = False) -> Response | DevicePagePublic:
    """JSON ``{"devices": [...], "next": cursor}``, or one page as CSV with ``Accept: text/csv`` (the next
    cursor in the ``X-Next-After`` header). ``failed_first``: the failed devices, then the others."""
    from bindery.provisioning.devices import COLUMNS, device_page

    page = device_page(session=session, actor=actor, bid=bid, cloud_api=cloud_api, status=state, after=after,
                       limit=limit, failed_first=failed_first)
    if "text/csv" in request.headers.get("accept", ""):
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(page.rows)
        return Response(out.getvalue(), media_type="text/csv",
                        headers={"X-Next-After": page.next_after} if page.next_after else None)
    return DevicePagePublic.model_validate({"devices": page.rows, "next": page.next_after})


@router.post("/batches", status_code=status.HTTP_201_CREATED, summary="Bind a batch (by BID or QR text)")
def bind(settings: SettingsDep, jobs: JobsDep, actor: ActorDep, body: BindRequest) -> BindResultPublic:
    answer = services.bind_batch(settings, jobs, actor, body.bid, body.qr, body.cloud_api)
    return BindResultPublic.model_validate(answer)


@router.delete("/batches/{bid}", status_code=status.HTTP_204_NO_CONTENT, summary="Unbind a batch (admins)")
def unbind(session: SessionDep, actor: ActorDep, bid: str) -> Response:
    binding.unbind(session=session, actor=actor, bid=bid)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/batches/{bid}/provision", status_code=status.HTTP_202_ACCEPTED, summary="Provision Now (admins)")
def provision(session: SessionDep, jobs: JobsDep, actor: ActorDep, bid: str, body: ProvisionRequest) -> JobPublic:
    return JobPublic.model_validate(services.start_provision(session, jobs, actor, bid, body.cloud_api).public())


@router.put("/batches/{bid}/target", summary="Change the batch's Product Cloud API (admins); provisions nothing")
def set_target(session: SessionDep, actor: ActorDep, bid: str, body: TargetRequest) -> BindingPublic:
    return BindingPublic.model_validate(services.set_target(session, actor, bid, body.cloud_api))


@router.post("/batches/{bid}/deprovision", status_code=status.HTTP_202_ACCEPTED,
             summary="Remove the batch's devices from a Product Cloud API (admins)")
def deprovision(session: SessionDep, jobs: JobsDep, actor: ActorDep, bid: str,
                body: DeprovisionRequest) -> JobPublic:
    job = services.start_deprovision(session, jobs, actor, bid, body.cloud_api, body.forget)
    return JobPublic.model_validate(job.public())


@router.get("/batches/{bid}/manifest", summary="The batch's Manifest File as CSV (admins)",
            response_class=FileResponse, responses={200: {
                "content": {"text/csv": {"schema": {"type": "string",
                                                    "description": "device_id,group_id,certificate"}}},
                "headers": {"Content-Disposition": {"required": True, "schema": {"type": "string"},
                                                    "description": "attachment; filename=<BID>-manifest.csv"}}}})
def download_manifest(session: SessionDep, settings: SettingsDep, actor: ActorDep, bid: str) -> FileResponse:
    return services.manifest_file(session, settings, actor, bid)


@router.get("/jobs/{job_id}", summary="Progress and counters of a provisioning job")
def job_status(session: SessionDep, jobs: JobsDep, actor: ActorDep, job_id: str) -> JobStatusPublic:
    return JobStatusPublic.model_validate(services.job_status(session, jobs, actor, job_id))


@router.get("/cloud-apis", summary="Your account's Product Cloud APIs, secrets redacted")
def list_cloud_apis(session: SessionDep, actor: ActorDep) -> list[CloudApiPublic]:
    return [CloudApiPublic.model_validate(config.public_view(api))
            for api in config.list_cloud_apis(session=session, actor=actor)]


@router.post("/cloud-apis", status_code=status.HTTP_201_CREATED, summary="Add a Product Cloud API (admins)")
def create_cloud_api(session: SessionDep, settings: SettingsDep, actor: ActorDep,
                     body: cloudapis.CloudApiCreate) -> CloudApiPublic:
    require(actor, Action.CONFIGURE_CLOUD_API)
    kind, options, secret = cloudapis.options_of(body)
    return CloudApiPublic.model_validate(
        services.add_cloud_api(session, settings, actor, body.name, kind, options, secret, body.check))


@router.patch("/cloud-apis/{name}", summary="Change options of a Product Cloud API (admins); its records are kept")
def update_cloud_api(session: SessionDep, settings: SettingsDep, actor: ActorDep, name: str,
                     body: cloudapis.CloudApiUpdate) -> CloudApiPublic:
    """Only the options given change (a secret left out is kept); ``kind`` must be the API's own."""
    kind, options, secret = cloudapis.options_of(body)
    return CloudApiPublic.model_validate(
        services.update_cloud_api(session, settings, actor, name, kind, options, secret, body.check))


@router.get("/cloud-apis/{name}", summary="One Product Cloud API, secret redacted")
def show_cloud_api(session: SessionDep, actor: ActorDep, name: str) -> CloudApiPublic:
    return CloudApiPublic.model_validate(config.public_view(config.get_cloud_api(session=session, actor=actor,
                                                                                 name=name)))


@router.delete("/cloud-apis/{name}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Remove a Product Cloud API (admins)")
def remove_cloud_api(session: SessionDep, actor: ActorDep, name: str) -> Response:
    config.remove_cloud_api(session=session, actor=actor, name=name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/settings/auto-provision", summary="The account's auto-provision setting")
def get_auto_provision(session: SessionDep, actor: ActorDep) -> AccountSettingsPublic:
    current = service.account_settings(session=session, actor=actor)
    return AccountSettingsPublic(enabled=current.enabled, cloud_api=current.cloud_api)


@router.put("/settings/auto-provision", summary="Turn auto-provision on (with a default API) or off (admins)")
def put_auto_provision(session: SessionDep, actor: ActorDep, body: AutoProvisionRequest) -> AccountSettingsPublic:
    current = service.set_auto_provision(session=session, actor=actor, enabled=body.enabled,
                                         cloud_api=body.cloud_api or None)
    return AccountSettingsPublic(enabled=current.enabled, cloud_api=current.cloud_api)


@router.post("/batches/{bid}/transfer", status_code=status.HTTP_201_CREATED,
             summary="Offer a batch to another account (admins); the answer holds the one-time code, shown once")
def offer_transfer(session: SessionDep, actor: ActorDep, bid: str, body: TransferRequest) -> TransferOfferPublic:
    return transfer.offer(session=session, actor=actor, bid=bid, to_account=body.to_account,
                          expires=transfer.parse_expires(body.expires), note=body.note)


@router.delete("/batches/{bid}/transfer", status_code=status.HTTP_204_NO_CONTENT,
               summary="Withdraw your account's open offer of a batch (admins)")
def withdraw_transfer(session: SessionDep, actor: ActorDep, bid: str) -> Response:
    transfer.withdraw(session=session, actor=actor, bid=bid)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/transfers", summary="Offers made and received by your account (never their codes)")
def list_transfers(session: SessionDep, actor: ActorDep) -> list[TransferPublic]:
    return [TransferPublic.model_validate(row) for row in transfer.list_transfers(session=session, actor=actor)]


@router.post("/transfers/accept", summary="Accept a batch offered to your account, with its code (admins)",
             responses={429: TOO_MANY_CODES})
def accept_transfer(settings: SettingsDep, jobs: JobsDep, actor: ActorDep, body: AcceptRequest) -> AcceptResultPublic:
    return AcceptResultPublic.model_validate(services.accept_transfer(settings, jobs, actor, body.code))


@router.post("/batches/{bid}/split", status_code=status.HTTP_201_CREATED,
             summary="Cut a batch in two (admins): the first count devices, or the devices named, move to new_bid")
def split_batch(session: SessionDep, actor: ActorDep, bid: str, body: SplitRequest) -> SplitResultPublic:
    done = split.split(session=session, actor=actor, bid=bid, new_bid=body.new_bid, count=body.count,
                       device_ids=body.devices)
    return SplitResultPublic(bid=done.bid, new_bid=done.new_bid, moved=done.moved, left=done.left)
