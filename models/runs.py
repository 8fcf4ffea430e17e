"""Run history: one row per provisioning, deprovisioning or reconcile run of a batch and target.

Written when the run starts (status ``running``) and again when it ends, with its counts; a reconcile
run also keeps its findings (the drift report), so the last report and the trend outlive the night."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from bindery.models.types import UTCDateTime, utcnow


class RunBase(SQLModel):
    kind: str = Field(max_length=16, index=True, description="provision, deprovision or reconcile")
    bid: str = Field(max_length=128, index=True)
    cloud_api: str = Field(max_length=128, description="the target's name when the run started")
    started_by: str = Field(max_length=320, description="user email, 'reconcile' or operator:NAME")
    started_via: str = Field(max_length=16, description="cli, console, schedule, prefect-api, flow, reconcile or "
                             "recovery (a crashed run started again)")
    status: str = Field(default="running", max_length=16, description="running, completed or failed")
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    message: str | None = Field(default=None, max_length=512)
    flow_run_id: str | None = Field(default=None, max_length=64)
    flow_run_url: str | None = Field(default=None, max_length=512)
    replaces_run_id: int | None = Field(default=None, description="the crashed run this one was started again "
                                        "for (by Bindery's recovery, or by a person after a crash)")


class Run(RunBase, table=True):
    __tablename__ = "run"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    batch_id: int = Field(foreign_key="batch.id", index=True)
    cloud_api_id: int = Field(description="kept without a foreign key: history outlives a removed target")
    counts: str = Field(default="{}", sa_column=Column(Text, nullable=False, server_default="{}"))
    findings: str | None = Field(default=None, sa_column=Column(Text, nullable=True),
                                 description="reconcile: device ids per kind of drift (JSON)")


class RunPublic(RunBase):
    id: int
    counts: dict[str, Any]
    findings: dict[str, Any] | None = None


class ReconcileReportPublic(RunPublic):
    """The last reconcile run of a batch and target, with its trend."""

    trend: list[int] = Field(description="drifted devices per run of the last 30, oldest first")
