"""What a Product Cloud API kind is, in one place: the spec each kind's module in ``bindery/clouds/kinds/``
exports as ``SPEC``. The CLI's options, the HTTP API's request bodies, the console's forms, the default
quotas, the run's chunk sizes, removal and reconcile all read specs; none of them names a kind.

A kind's options are a pydantic model (a subclass of :class:`CloudApiOptions`) whose fields carry the
words every surface shows: ``title`` is the form's label, ``description`` the help (the CLI's too),
``examples`` the placeholder; :func:`option` adds the choices, the secret and the input type. Its
``validate`` checks what was given and raises :class:`~bindery.errors.FieldError` naming the option, so
the CLI can say ``--region`` and a page "Region", both from the same sentence.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bindery.errors import FieldError
from bindery.secrets import Secret

if TYPE_CHECKING:
    from sqlmodel import Session

    from bindery.clouds.base import Connector
    from bindery.settings import Settings

InputType = Literal["text", "url", "password", "select", "number"]


def option(label: str, help: str, *, example: str | None = None, max_length: int = 200,
           choices: tuple[str, ...] = (), secret: bool = False, required: bool = False,
           input: InputType | None = None) -> Any:
    """A kind's option: ``None`` unless given (the kind's ``validate`` decides what is required, so that
    every surface gets the same sentence). ``required`` marks it so in forms and in the schema."""
    extra: dict[str, Any] = {"x-input": input or ("password" if secret else "select" if choices else "text")}
    if choices:
        extra["enum"] = list(choices)
    if secret:
        extra.update({"x-secret": True, "writeOnly": True})
    if required:
        extra["x-required"] = True
    return Field(default=None, max_length=max_length, title=label, description=help,
                 examples=[example] if example else None, json_schema_extra=extra)


NumberText = Annotated[float, Field(allow_inf_nan=False)] | Annotated[str, Field(max_length=32)] | None


class CloudApiOptions(BaseModel):
    """The options every kind takes (the run's pace, chunk size and timeout); a kind's model adds its own
    and ``kind: Literal["..."]``, the discriminator of the API's request bodies."""

    model_config = ConfigDict(extra="forbid")

    quota: NumberText = Field(
        default=None, title="Raised quota (per second)", examples=["20"],
        description="The provider's quota when it was raised for you; empty: the kind's published quota.",
        json_schema_extra={"x-input": "number", "x-advanced": True})
    pace: NumberText = Field(
        default=None, title="Pace (fraction of the quota)", examples=["0.97"],
        description="How close to the quota to send, above 0 and at most 1 (default 0.97); throttling slows "
                    "it down for a while.", json_schema_extra={"x-input": "number", "x-advanced": True})
    chunk_size: int | Annotated[str, Field(max_length=32)] | None = Field(
        default=None, title="Chunk size (devices)", examples=["100"],
        description="Most devices per request or chunk, 1 to 1000 (interop kinds size requests to the time "
                    "budget below it).", json_schema_extra={"x-input": "number", "x-advanced": True})
    timeout: NumberText = Field(
        default=None, title="Timeout (seconds)", examples=["30"],
        description="Seconds before a request to the target times out, 1 to 600.",
        json_schema_extra={"x-input": "number", "x-advanced": True})


COMMON_OPTIONS = ("quota", "pace", "chunk_size", "timeout")


@dataclass(frozen=True)
class FormField:
    """One option as forms and the CLI show it (read from the options model)."""

    name: str
    label: str
    help: str
    example: str = ""
    choices: tuple[str, ...] = ()
    secret: bool = False
    required: bool = False
    input: str = "text"
    max_length: int | None = None
    advanced: bool = False  # one of the common options (quota, pace, chunk size, timeout)


def form_fields(options: type[CloudApiOptions]) -> list[FormField]:
    """The model's options in declaration order, the kind's own first, the common ones last."""
    found = []
    for name, info in options.model_fields.items():
        if name == "kind":
            continue
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        limit = next((m.max_length for m in info.metadata if hasattr(m, "max_length")), None)
        found.append(FormField(
            name=name, label=info.title or name, help=info.description or "",
            example=str(info.examples[0]) if info.examples else "",
            choices=tuple(str(c) for c in extra.get("enum", []) or []),  # type: ignore[union-attr]
            secret=bool(extra.get("x-secret")), required=bool(extra.get("x-required")),
            input=str(extra.get("x-input", "text")), max_length=limit, advanced=bool(extra.get("x-advanced"))))
    return sorted(found, key=lambda f: f.advanced)


@dataclass(frozen=True)
class Checked:
    """A kind's options after ``validate``: the settings stored in clear, and the one secret apart."""

    settings: dict[str, str]
    secret: str | None = None


@dataclass(frozen=True)
class Quota:
    """A kind's published default rate and what it counts; ``tokens(devices)`` is what the run takes from
    the target's pace before handing a chunk of that many devices to the connector (0: the connector
    paces each call itself, through ``Connector.pace``)."""

    rate: float  # per second
    counts: str  # what one unit of the rate is: "request", "device", "bulk operation"
    tokens: Callable[[int], float]
    source: str = ""  # where the figure comes from, for the docs


@dataclass(frozen=True)
class Removal:
    """Whether the kind can remove devices from its target; when it cannot, ``refusal`` says what to do
    instead (``{name}`` is the API's name, ``{fix}`` how to mark the records removed, in each surface's words)."""

    supported: bool
    refusal: str = ""


@dataclass(frozen=True)
class Target:
    """What a connector is made from: the API's stored settings, its secret decrypted, and the run's
    settings (a database session, for kinds that sign with Bindery's key)."""

    session: Session
    settings: Settings
    name: str
    options: dict[str, str]
    secret: str | None

    @property
    def timeout(self) -> float:
        return float(self.options.get("timeout") or self.settings.http_timeout)

    @property
    def chunk_size(self) -> int:
        return int(self.options.get("chunk_size") or self.settings.provision_chunk_size)


Validator = Callable[[dict[str, str], Secret | None, "Settings", bool], Checked]


def no_derived(_stored: dict[str, str]) -> set[str]:
    return set()


@dataclass(frozen=True)
class KindSpec:
    """Everything Bindery knows of one kind of Product Cloud API."""

    kind: str
    title: str  # the kind chooser's words: "AWS IoT Core (direct)"
    summary: str  # one sentence under it: what the kind writes where
    options: type[CloudApiOptions]
    validate: Validator  # (given options, secret, settings, check the target?) -> Checked; raises FieldError
    quota: Quota
    connect: Callable[[Target], Connector]  # imports the connector's libraries only when called
    removal: Removal
    reconcile: str | None  # what reconcile lists in the target; None: the kind cannot be asked
    chunk_limit: int | None = None  # most devices one chunk (one task) may take, whatever --chunk-size says
    bulk_size: int | None = None  # most devices one call to the provider carries
    secret: str | None = None  # the option that is the kind's secret (encrypted, never shown)
    destination: tuple[str, ...] = ()  # options naming where the secret is sent: a change asks for it again
    derived: Callable[[dict[str, str]], set[str]] = no_derived  # stored settings an update recomputes
    target_of: Callable[[dict[str, str]], str] = lambda s: s.get("url", "")  # what listings show as target
    order: int = 100  # place in listings and the kind chooser
    docs: str = ""  # a page under docs/ about the kind
    fields: list[FormField] = field(default_factory=list, init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", form_fields(self.options))
        names = {f.name for f in self.fields}
        assert self.secret is None or self.secret in names, f"{self.kind}: secret {self.secret} is no option"
        assert self.options.model_fields["kind"].default == self.kind, f"{self.kind}: kind Literal default"

    @property
    def own_options(self) -> tuple[str, ...]:
        """The kind's option names (its secret included, the common options not)."""
        return tuple(f.name for f in self.fields if not f.advanced)

    def label(self, name: str) -> str:
        return next((f.label for f in self.fields if f.name == name), name.replace("_", " ").capitalize())

    def chunk_size(self, asked: int) -> int:
        return min(asked, self.chunk_limit) if self.chunk_limit else asked


# Helpers the kinds' validators share: each raises the FieldError every surface words its own way.

def need(options: dict[str, str], name: str) -> str:
    value = (options.get(name) or "").strip()
    if not value:
        raise FieldError(name, "is required for this kind", joined=False)
    return value


def need_secret(secret: Secret | None, name: str) -> str:
    if secret is None or not secret.value:
        raise FieldError(name, "is required for this kind", joined=False)
    return secret.value


def match(value: str, pattern: re.Pattern[str], name: str, what: str) -> str:
    if not pattern.fullmatch(value):
        raise FieldError(name, f"{value[:200]!r} is not {what}")
    return value


REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
