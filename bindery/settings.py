"""The one place Bindery reads its configuration (environment, prefix ``BINDERY_``).

Settings are built by :func:`get_settings` on every call, never at import time, so tests and
the CLI can change the environment between runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BINDERY_", extra="ignore")

    home: Path = Field(default=Path(".bindery"), description="Folder for the embedded database and spool")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite under BINDERY_HOME"
    )
    database_connect_timeout: float = Field(default=10.0, gt=0, description="Seconds to reach the database")
    database_statement_timeout: float = Field(default=120.0, gt=0, description="PostgreSQL: longest statement, "
                                              "lock waits included")
    sqlite_busy_timeout: float = Field(default=30.0, gt=0, description="SQLite: how long a writer waits for the lock")
    database_retry_seconds: float = Field(default=60.0, ge=0, description="How long a provisioning run keeps "
                                          "retrying a database write after an outage")
    public_url: str = Field(default="http://localhost:8000", description="Base URL printed in QR codes")
    user: str | None = Field(default=None, description="Acting user's email when --user is not given")
    import_chunk_size: int = Field(default=1000, ge=1, description="Devices per verification chunk")
    verify_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    max_extract_bytes: int = Field(default=2 * 1024**3, ge=1, description="Cap on bytes unpacked per archive")
    max_archive_members: int = Field(default=500_000, ge=1, description="Cap on members per archive")
    manifest_chunk_size: int = Field(default=5000, ge=1, description="Rows per manifest query")
    secret_key: str | None = Field(default=None, repr=False, description="Fernet key encrypting secrets at rest")
    allow_private_targets: bool = Field(default=False, description="Allow Product Cloud URLs on private networks")
    http_timeout: float = Field(default=30.0, gt=0, description="Seconds before an outbound call times out")
    provision_chunk_size: int = Field(default=100, ge=1, description="Devices per provisioning chunk (task)")
    provision_concurrency: int = Field(default=4, ge=1, description="Chunks in flight per run")
    aws_device_concurrency: int = Field(default=128, ge=1, description="Most aws-iot devices in flight per target "
                                        "and process (Little's law picks how many below it)")
    provision_retries: int = Field(default=6, ge=0, description="Retries of a chunk after transient failures")
    retry_base_seconds: float = Field(default=1.0, ge=0, description="First retry delay; doubles, with jitter")
    lease_seconds: float = Field(default=300.0, gt=0, description="Lease of a run on its batch and target")
    lease_wait_seconds: float = Field(default=10.0, ge=0, description="How long a second run waits for the lease")
    quota_sharing: Literal["database", "prefect", "process"] = Field(
        default="database", description="Where a target's quota is kept: Bindery's database (every process "
        "and host together), a Prefect global concurrency limit, or per process")
    shard_lease_seconds: float = Field(default=60.0, gt=0, description="Lease of a shard run; renewed every third")
    shard_start_seconds: float = Field(default=60.0, gt=0, description="How long a shard run a worker took may "
                                       "take to claim its shard before it counts as lost")
    shard_deployment: str = Field(default="provision-shard/provision-shard",
                                  description="Deployment that runs one shard of a sharded provisioning run")
    shard_launches: int = Field(default=3, ge=1, description="Flow runs started per shard before giving up")
    web_max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="Largest request body the web takes")
    login_max_failures: int = Field(default=5, ge=1, description="Failed logins per email in a window")
    login_max_failures_per_client: int = Field(default=20, ge=1,
                                               description="Failed logins per client address in a window")
    login_window_seconds: float = Field(default=900.0, gt=0, description="Window of the login limits")
    supervise_seconds: float = Field(default=2.0, gt=0, description="How often a sharded run checks its shards")
    heartbeat_seconds: int = Field(default=30, ge=30, description="Seconds between a flow run's heartbeats to the "
                                   "Prefect server (PREFECT_FLOWS_HEARTBEAT_FREQUENCY of the workers and `bindery "
                                   "serve`; Prefect's minimum is 30)")
    zombie_seconds: int = Field(default=90, ge=30, description="A Bindery flow run that sends neither a heartbeat nor "
                                "a final state for this long is marked Crashed (the automation `bindery deploy` makes)")
    crash_restarts: int = Field(default=3, ge=0, description="Times a crashed provisioning run of one batch and "
                                "target is started again before it raises bindery.provisioning.failed instead")
    crash_backoff_seconds: float = Field(default=10.0, ge=0, description="Wait before the first restart of a "
                                         "crashed run; doubles with every further restart")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'bindery.db').resolve()}"

    @property
    def secret_key_file(self) -> Path:
        return self.home / "secret.key"

    @property
    def spool_dir(self) -> Path:
        return self.home / "spool"


def get_settings() -> Settings:
    return Settings()
