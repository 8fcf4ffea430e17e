"""docs/configuration.md, generated from the Settings model: every setting's name, variable, type, default
and description. `python -m bindery.settings_reference` writes the page; a test fails when it is stale
or a setting has no description."""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from bindery.settings import PREFIX, Settings

PAGE = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"

INTRO = """# Configuration

<!-- Generated from bindery/settings.py by `python -m bindery.settings_reference`; edit the Settings
     fields' descriptions there, never this page. A test fails when the page is stale. -->

Bindery reads its configuration from environment variables, in one place (`bindery/settings.py`), once per
process: the `BINDERY_*` settings below, and the Prefect client's variables under their own names, which
Bindery passes on explicitly to Prefect's client and to the processes it starts (workers, the demo's
steps). Prefect reads its own other variables itself; those an operator sets on the server side
(`PREFECT_SERVER_HOST`, `PREFECT_API_DATABASE_CONNECTION_URL`, …) are in
[Prefect deployments and workers](operations/deployments.md#production). Timeouts and what happens when
they run out: [Failing well](operations/failing-well.md).

Booleans take `1`/`0` or `true`/`false`; durations are in seconds. An invalid value stops every command
with one line naming the variable.
"""


def variable(name: str, field: FieldInfo) -> str:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"{PREFIX}{name.upper()}"


def type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(f"`{choice}`" for choice in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        present = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return " or ".join(type_name(arg) for arg in present) + " (optional)"
    names = {str: "text", int: "integer", float: "number", bool: "boolean", Path: "path"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def default_text(field: FieldInfo) -> str:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if "default_shown" in extra:
        return str(extra["default_shown"])
    value = field.default
    if value is None:
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int):
        for unit, size in (("GiB", 1024**3), ("MiB", 1024**2)):
            if value >= size and value % size == 0:
                return f"`{value}` ({value // size} {unit})"
        return f"`{value:_}`".replace("_", ",") if value >= 10_000 else f"`{value}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def missing_descriptions(model: type[BaseSettings]) -> list[str]:
    """Settings without a description: each must say what it does on the page."""
    return [name for name, field in model.model_fields.items() if not (field.description or "").strip()]


def render(model: type[BaseSettings] = Settings) -> str:
    missing = missing_descriptions(model)
    if missing:
        raise ValueError(f"settings without a description: {', '.join(missing)}")
    rows = ["| variable (setting) | type | default | description |", "| --- | --- | --- | --- |"]
    for name, field in model.model_fields.items():
        description = " ".join((field.description or "").split()).replace("|", "\\|")
        rows.append(f"| `{variable(name, field)}`<br>(`{name}`) | {type_name(field.annotation)} | "
                    f"{default_text(field)} | {description} |")
    return INTRO + "\n" + "\n".join(rows) + "\n"


def main() -> None:
    PAGE.write_text(render())
    print(f"wrote {PAGE}", file=sys.stderr)


if __name__ == "__main__":
    main()
