"""The one place Bindery reads its environment: every variable it reads is a field of :class:`Settings`
(prefix ``BINDERY_``; the Prefect client's ``PREFECT_API_URL``, ``PREFECT_API_AUTH_STRING``,
``PREFECT_UI_URL`` and ``PREFECT_HOME`` and the CA bundles ``SSL_CERT_FILE`` and ``REQUESTS_CA_BUNDLE`` under
their own names: :data:`UNPREFIXED_NAMES`), read here and passed on explicitly — to
Prefect's client and to the processes Bindery starts.

:func:`get_settings` builds them once per process and environment: the same object while the variables
it reads stay the same (a test that changes one gets fresh settings; :func:`reset_settings` drops the
cache). docs/configuration.md is generated from the fields (``python -m bindery.settings_reference``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from bindery.errors import BadInput

PREFIX = "BINDERY_"


def _unprefixed(name: str) -> AliasChoices:
    """A variable read under its own name, no BINDERY_ prefix (Prefect's client variables, the CA bundles)."""
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", populate_by_name=True,
                                      frozen=True)  # one object is shared by the whole process

    home: Path = Field(default=Path(".bindery"), description="Folder of the embedded database, the spool, the "
                       "generated secret key, the error log and the demo's files")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of Bindery's database, e.g. "
        "`postgresql+psycopg://user:pass@host/bindery`; default: SQLite at `$BINDERY_HOME/bindery.db`")
    database_connect_timeout: float = Field(default=10.0, gt=0, description="Seconds to reach the database "
                                            "(PostgreSQL `connect_timeout`)")
    database_statement_timeout: float = Field(default=120.0, gt=0, description="PostgreSQL: seconds one "
                                              "statement may take, lock waits included (`statement_timeout`)")
    sqlite_busy_timeout: float = Field(default=30.0, gt=0, description="SQLite: seconds a writer waits for the "
                                       "file lock (`busy_timeout`)")
    database_retry_seconds: float = Field(default=60.0, ge=0, description="How long a provisioning run keeps "
                                          "retrying its database writes (and its pace) through an outage")
    public_url: str = Field(default="http://localhost:8000", description="Base URL of the console, printed in "
                            "reel QR codes (`<url>/bind?bid=<BID>`)")
    user: str | None = Field(default=None, description="Acting user's email for commands that act for someone, "
                             "when `--user` is not given")
    import_chunk_size: int = Field(default=1000, ge=1, description="Devices per verification chunk (one Prefect "
                                   "task each)")
    verify_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, description="Worker "
                                "processes verifying a reel's chunks", json_schema_extra={"default_shown": "CPU count"})
    max_extract_bytes: int = Field(default=2 * 1024**3, ge=1, description="Cap on bytes unpacked from one "
                                   "archive (declared sizes checked first, actual bytes counted)")
    max_archive_members: int = Field(default=500_000, ge=1, description="Cap on members in one archive")
    manifest_chunk_size: int = Field(default=5000, ge=1, description="Rows per database query when writing a "
                                     "Manifest File")
    secret_key: str | None = Field(default=None, repr=False, description="Fernet key encrypting secrets at rest; "
                                   "default: generated into `$BINDERY_HOME/secret.key` (mode 0600) with a warning")
    allow_private_targets: bool = Field(default=False, description="Allow Product Cloud URLs on private, "
                                        "link-local or loopback addresses")
    http_timeout: float = Field(default=30.0, gt=0, description="Seconds before an outbound call to a Product "
                                "Cloud times out")
    provision_chunk_size: int = Field(default=100, ge=1, description="Devices per provisioning chunk (one "
                                      "Prefect task; at most 100 for IoT Hub)")
    provision_concurrency: int = Field(default=4, ge=1, description="Chunks in flight per run (per shard)")
    aws_device_concurrency: int = Field(default=128, ge=1, description="Most aws-iot devices in flight per target "
                                        "and process (Little's law picks how many below it)")
    provision_retries: int = Field(default=6, ge=0, description="Retries of a chunk after transient failures")
    retry_base_seconds: float = Field(default=1.0, ge=0, description="First retry delay; doubles, full jitter, "
                                      "at most 60 s, at least Retry-After")
    lease_seconds: float = Field(default=300.0, gt=0, description="A run's lease on its batch and target, renewed "
                                 "as chunks finish")
    lease_wait_seconds: float = Field(default=10.0, ge=0, description="How long a second run waits for the lease "
                                      "before it is refused")
    quota_sharing: Literal["database", "prefect", "process"] = Field(
        default="database", description="Where a target's pace is kept: `database` (every process and host "
        "together), `prefect` (a Prefect global concurrency limit) or `process` (this process only)")
    shard_lease_seconds: float = Field(default=60.0, gt=0, description="A shard run's claim on its devices, "
                                       "renewed every third; taken over after expiry")
    shard_start_seconds: float = Field(default=60.0, gt=0, description="How long a shard run a worker took may "
                                       "take to claim its shard before it counts as lost")
    shard_deployment: str = Field(default="provision-shard/provision-shard",
                                  description="Deployment that runs one shard of a sharded provisioning run")
    shard_launches: int = Field(default=3, ge=1, description="Flow runs started per shard (first and relaunches) "
                                "before the run gives up on it")
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
    web_max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="Largest request body the console "
                                    "and API take (413 above)")
    login_max_failures: int = Field(default=5, ge=1, description="Failed logins per email in a window before 429")
    login_max_failures_per_client: int = Field(default=20, ge=1, description="Failed logins per client address "
                                               "in a window before 429")
    login_window_seconds: float = Field(default=900.0, gt=0, description="The login limits' window, in seconds")
    transfer_code_max_failures: int = Field(default=10, ge=1, description="Wrong or expired transfer codes an "
                                            "account may try in a window before accepting is refused for the rest "
                                            "of it (429)")
    transfer_code_window_seconds: float = Field(default=900.0, gt=0, description="The wrong or expired transfer "
                                                "codes' window, in seconds")
    alert_webhook_url: str | None = Field(default=None, repr=False, description="Where `bindery deploy` / "
                                          "`bindery alerts` point the alert automation (a webhook URL, kept "
                                          "among the Prefect block's secret values)")
    prefect_api_url: str | None = Field(default=None, validation_alias=_unprefixed("PREFECT_API_URL"),
                                        description="The Prefect server's API, `http://host:port/api`: long work "
                                        "from the console becomes flow runs there, and `deploy`, `worker`, "
                                        "`alerts` and `doctor` use it; unset, flows run on a temporary server")
    prefect_api_auth_string: str | None = Field(default=None, repr=False,
                                                validation_alias=_unprefixed("PREFECT_API_AUTH_STRING"),
                                                description="`user:password` for a Prefect server with auth")
    prefect_ui_url: str | None = Field(default=None, validation_alias=_unprefixed("PREFECT_UI_URL"),
                                       description="The Prefect UI's address in flow-run links (run history, "
                                       "console jobs); default: the API's host")
    prefect_home: Path | None = Field(default=None, validation_alias=_unprefixed("PREFECT_HOME"),
                                      description="Prefect's local folder; `bindery demo` defaults it to "
                                      "`$BINDERY_HOME/prefect`")
    ssl_cert_file: str | None = Field(default=None, validation_alias=_unprefixed("SSL_CERT_FILE"),
                                      description="A CA bundle trusted besides the system's by the azure-dps "
                                      "connector (a private CA or a local stand-in)")
    requests_ca_bundle: str | None = Field(default=None, validation_alias=_unprefixed("REQUESTS_CA_BUNDLE"),
                                           description="Another CA bundle the azure-dps connector trusts (the "
                                           "variable requests-based tools read)")

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

    @property
    def prefect_ui(self) -> str | None:
        """The Prefect UI's address for flow-run links: PREFECT_UI_URL, else the API's host; None when
        neither is set (a temporary server's UI is gone with it)."""
        return self.prefect_ui_url or (self.prefect_api_url or "").removesuffix("/api") or None

    def prefect_environment(self) -> dict[str, str]:
        """The Prefect client's variables, to hand to a process Bindery starts."""
        named = {"PREFECT_API_URL": self.prefect_api_url, "PREFECT_API_AUTH_STRING": self.prefect_api_auth_string,
                 "PREFECT_UI_URL": self.prefect_ui_url,
                 "PREFECT_HOME": str(self.prefect_home) if self.prefect_home else None}
        return {name: value for name, value in named.items() if value}


# The variables read under their own names, without BINDERY_ (Prefect's client's, the CA bundles).
UNPREFIXED_NAMES = frozenset(name for field in Settings.model_fields.values()
                             if isinstance(field.validation_alias, AliasChoices)
                             for name in field.validation_alias.choices if isinstance(name, str) and name.isupper())

_lock = threading.Lock()
_cached: tuple[tuple[tuple[str, str], ...], Settings] | None = None


def _read(environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The variables Settings reads, as they are now (names compared as pydantic-settings does: any case)."""
    return tuple(sorted((name, value) for name, value in environ.items()
                        if name.upper().startswith(PREFIX) or name.upper() in UNPREFIXED_NAMES))


def get_settings() -> Settings:
    """This process's settings: built on the first call, the same object after, as long as the variables
    they come from are unchanged."""
    global _cached
    key = _read(os.environ)
    cached = _cached
    if cached is not None and cached[0] == key:
        return cached[1]
    with _lock:
        try:
            settings = Settings()
        except ValidationError as exc:
            raise BadInput(configuration_error(exc)) from None
        _cached = (key, settings)
    return settings


def configuration_error(error: ValidationError) -> str:
    """One line naming each variable that is wrong and why, never its value (it may be a secret)."""
    fields = Settings.model_fields
    problems = []
    for problem in error.errors(include_input=False, include_url=False):
        name = str(problem["loc"][0]) if problem["loc"] else ""
        field = fields.get(name) or next((f for f in fields.values() if isinstance(f.validation_alias, AliasChoices)
                                          and name in f.validation_alias.choices), None)
        alias = field.validation_alias if field is not None else None
        variable = str(alias.choices[0]) if isinstance(alias, AliasChoices) else f"{PREFIX}{name.upper()}"
        problems.append(f"{variable}: {problem['msg'][:1].lower()}{problem['msg'][1:]}")
    return "; ".join(problems)


def reset_settings() -> None:
    """Forget the cached settings (tests): the next :func:`get_settings` reads the environment again."""
    global _cached
    with _lock:
        _cached = None


def operator_variable(name: str) -> str:
    """A variable the operator named on the command line (`env:NAME`, `--password-env NAME`): the CLI's
    indirections, read here like every other variable ('' when unset)."""
    return os.environ.get(name, "")


def child_environment(settings: Settings, *, defaults: Mapping[str, str] | None = None,
                      overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a process Bindery starts: this one's, the Prefect client's settings as Bindery
    read them, ``defaults`` where the variable is unset, then ``overrides``."""
    env = {**os.environ, **settings.prefect_environment()}
    for name, value in (defaults or {}).items():
        env.setdefault(name, value)
    return {**env, **(overrides or {})}


def bindery_variables() -> dict[str, str]:
    """Bindery's own variables as they are now: what a worker started for this process must run with."""
    return {name: value for name, value in os.environ.items() if name.upper().startswith(PREFIX)}


def home_fallback() -> Path:
    """``BINDERY_HOME`` alone, for the error log when the settings themselves do not validate."""
    return Path(os.environ.get(f"{PREFIX}HOME", ".bindery"))
