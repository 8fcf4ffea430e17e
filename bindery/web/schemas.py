"""The HTTP API's answers that are no table's public shape: jobs, pages of devices, the bind outcome,
and the one error model every 4xx and 5xx answer has (``{"detail": ...}``, as the CLI's message)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bindery.models.provisioning import ProvisioningRecordPublic


class ValidationIssue(BaseModel):
    """Where a request did not match its schema, and what was wrong (never the value sent)."""

    loc: list[str] = Field(description="e.g. ['body', 'cloud_api'] or ['query', 'limit']")
    msg: str
    type: str


class ApiError(BaseModel):
    """Every error answer: one line in the CLI's words, or, for a request that does not match the
    schema, the list of what is wrong where."""

    detail: str | list[ValidationIssue]


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"model": ApiError, "description": description}
    if headers:
        answer["headers"] = headers
    return answer


ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error("No, an invalid or a revoked API token", {"WWW-Authenticate": {
        "description": "Bearer", "required": True, "schema": {"type": "string"}}}),
    403: _error("The token's user may not do this (e.g. a member, for an admins' action)"),
    404: _error("Not there, or another account's (the two answers are the same)"),
    409: _error("In conflict with the current state (e.g. provisioned devices, a run already going)"),
    413: _error("Request body over the server's limit (BINDERY_WEB_MAX_BODY_BYTES)"),
    422: _error("Bad input: one line naming the field, or the request's schema errors"),
    500: _error("A bug: one line here, the traceback in the server's log"),
    503: _error("The database (or the Prefect server) is unavailable: retry later", {"Retry-After": {
        "description": "seconds to wait before retrying", "required": True, "schema": {"type": "integer"}}}),
}


TOO_MANY_CODES = _error("Too many wrong or expired transfer codes tried in your account lately: wait, then try "
                        "again (BINDERY_TRANSFER_CODE_MAX_FAILURES)", {"Retry-After": {
                            "description": "seconds until a code is taken again", "required": True,
                            "schema": {"type": "integer"}}})


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a key the code adds but the schema lacks fails the tests


class JobPublic(_Answer):
    """A provisioning or deprovisioning job started from the API or the console."""

    id: str
    kind: str = Field(description="provision or deprovision")
    bid: str
    cloud_api: str | None = Field(description="the Product Cloud API; none: the batch's target")
    state: str = Field(description="RUNNING, COMPLETED or FAILED; with a Prefect server, the flow run's state type "
                                   "(SCHEDULED, PENDING, RUNNING, COMPLETED, FAILED, CRASHED, CANCELLED)")
    chunks_done: int
    chunks: int
    message: str
    flow_run_id: str | None = Field(description="the Prefect flow run, when a Prefect server runs the job")
    prefect_ui: str | None = Field(description="the flow run in the Prefect UI")
    devices: int | None = Field(default=None, description="when finished (provision): devices in the batch")
    provisioned: int | None = Field(default=None, description="when finished (provision): devices provisioned")
    removed: int | None = Field(default=None, description="when finished (deprovision): devices removed")
    failed: int | None = Field(default=None, description="when finished: devices that failed")
    not_tried: int | None = Field(default=None, description="when finished (provision): devices the run ended "
                                                            "before trying")


class JobStatusPublic(JobPublic):
    """A job with its batch's counters, read from the records."""

    devices: int = Field(description="devices in the batch")
    provisioned: dict[str, int] = Field(  # type: ignore[assignment]
        description="provisioned devices per Product Cloud API name")


class BindResultPublic(_Answer):
    bid: str
    devices: int
    already_bound: bool = Field(description="the batch was already bound to your account (nothing changed)")
    job: JobPublic | None = Field(description="the provisioning job, when an admin picked an API or "
                                              "auto-provision is on")


class AcceptResultPublic(_Answer):
    bid: str
    devices: int
    from_account: str = Field(description="the account that offered the batch")
    job: JobPublic | None = Field(description="the provisioning job, when your account's auto-provision is on")


class SplitResultPublic(_Answer):
    bid: str
    new_bid: str
    moved: int = Field(description="devices now in the new batch")
    left: int = Field(description="devices left in the batch")


class DevicePagePublic(_Answer):
    devices: list[ProvisioningRecordPublic]
    next: str | None = Field(description="pass as ``after`` for the next page; none on the last one")
