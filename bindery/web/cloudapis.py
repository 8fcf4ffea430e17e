"""The HTTP API's and the console's Product Cloud API bodies, made from the kinds' specs: a union
discriminated on ``kind``, so /openapi.json shows each kind's own fields, and the console's forms are
held to the same limits."""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import BaseModel, Field, TypeAdapter, ValidationError, create_model

from bindery.clouds import config
from bindery.clouds.kinds import spec_of, specs
from bindery.clouds.spec import KindSpec
from bindery.errors import FieldError
from bindery.secrets import Secret

CHECK = Field(default=True, description="Contact the target before storing (an authorized call that changes "
                                        "nothing); nothing is stored when it fails.")


def _model(spec: KindSpec, creating: bool) -> type[BaseModel]:
    stem = spec.options.__name__.removesuffix("Options")
    fields: dict[str, Any] = {"check": (bool, CHECK)}
    if creating:
        fields["name"] = (str, Field(max_length=200, title="Name", description="The API's name in your account.",
                                     examples=["fleet-eu"]))
    return create_model(f"{stem}CloudApi{'' if creating else 'Update'}", __base__=spec.options,
                        __doc__=spec.summary, **fields)


def _union(creating: bool) -> Any:
    models = tuple(_model(spec, creating) for spec in specs())
    return Annotated[Union[models], Field(discriminator="kind")]  # noqa: UP007 (a union made at run time)


CloudApiCreate: Any = _union(creating=True)
CloudApiUpdate: Any = _union(creating=False)
_create = TypeAdapter(CloudApiCreate)
_update = TypeAdapter(CloudApiUpdate)


def adapter(creating: bool) -> TypeAdapter[Any]:
    return _create if creating else _update


def field_errors(exc: ValidationError) -> list[FieldError]:
    """Each field's first problem, as FieldErrors (``name: String should have at most 200 characters``)."""
    found: dict[str, FieldError] = {}
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        name = loc[-1] if len(loc) > 1 or (loc and loc[0] in ("name", "kind")) else "kind"
        if error["type"] == "missing":
            found.setdefault(name, FieldError(name, "is required", joined=False))
        found.setdefault(name, FieldError(name, str(error["msg"])))
    return list(found.values())


def parse(fields: dict[str, Any], creating: bool = True) -> BaseModel:
    """A body (the API's, or a console form's fields) as the kind's model; FieldError on the first problem."""
    try:
        parsed: BaseModel = (_create if creating else _update).validate_python(fields)
    except ValidationError as exc:
        first = field_errors(exc)[0]
        raise FieldError(first.field, first.problem) from None
    return parsed


def options_of(body: BaseModel) -> tuple[str, dict[str, str | None], Secret | None]:
    """The kind, its options as the CLI's, and its secret taken literally: the web never reads a file or a
    variable for a caller (" @/etc/passwd" is a password of those characters)."""
    values = body.model_dump(exclude={"name", "check"})
    kind = str(values.pop("kind"))
    secret_name = spec_of(kind).secret
    raw = values.pop(secret_name, None) if secret_name else None
    options = {k: (str(v) if v not in (None, "") else None) for k, v in values.items()}
    return kind, options, (Secret(str(raw)) if raw not in (None, "") else None)


def view(api: Any) -> dict[str, Any]:
    return config.public_view(api)
