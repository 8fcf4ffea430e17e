"""The HTTP API reference page (docs/api/reference.md), written from the app's OpenAPI document so it
cannot say other than what `/openapi.json` says; a test fails when the page is stale.

Regenerate: ``.venv/bin/python -m bindery.web.reference > docs/api/reference.md``."""

from __future__ import annotations

from typing import Any

HEADER = """# HTTP API reference

<!-- Generated from /openapi.json by `python -m bindery.web.reference > docs/api/reference.md`: do not edit. -->

Every route of `bindery web` under `/api`, with its parameters, request body and answers, and the
schema of every body. It is the OpenAPI document `bindery web` serves at `/openapi.json` (and renders
at `/docs`), said as a page; generate a client from that document. Authenticate every call with
`Authorization: Bearer <token>` (`bindery token create`); see [the HTTP API](index.md) for the recipe.

Every error answer has the body [ApiError](#apierror): `{"detail": "one line in the CLI's words"}`,
or, for a request that does not match the schema (422), the list of what is wrong where.

The test suite holds the server to this document: `tests/bindery/web/test_api_conformance.py` runs
[Schemathesis](https://schemathesis.readthedocs.io/) against every route as an admin and as a member of a
seeded account and fails on any status code, content type, header or body the document does not declare.
"""


def type_of(schema: dict[str, Any]) -> str:
    """A schema as a short type: `string`, `integer or null`, `list of [BindingPublic](#bindingpublic)`."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    for combined in ("anyOf", "oneOf"):
        if combined in schema:
            text = " or ".join(dict.fromkeys(type_of(part) for part in schema[combined]))
            return text + (f" (by `{schema['discriminator']['propertyName']}`)" if "discriminator" in schema else "")
    if "const" in schema:
        return f"`{schema['const']!r}`".replace("'", '"')
    if "enum" in schema:
        return " or ".join(f"`{value}`" for value in schema["enum"])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(type_of({**schema, "type": one}) for one in kind)
    if kind == "array":
        return f"list of {type_of(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {type_of(schema['additionalProperties'])}"
    return f"{kind} ({schema['format']})" if "format" in schema else str(kind)


def cell(text: Any) -> str:
    return " ".join(str(text or "").split()).replace("|", "\\|")


def limits(schema: dict[str, Any]) -> str:
    found = [f"{label} {schema[key]}" for key, label in (("minimum", "≥"), ("maximum", "≤"), ("maxLength", "at most"),
                                                          ("pattern", "matching"), ("default", "default"))
             if key in schema]
    return "; ".join(found)


def operation(method: str, path: str, op: dict[str, Any]) -> list[str]:
    lines = [f"### {method.upper()} `{path}`", "", cell(op.get("summary")) + ".", ""]
    if op.get("description"):
        lines += [op["description"].strip(), ""]
    params = op.get("parameters", [])
    if params:
        lines += ["| Parameter | In | Type | Required | Notes |", "|---|---|---|---|---|"]
        for param in params:
            schema = param.get("schema", {})
            notes = "; ".join(part for part in (cell(param.get("description") or schema.get("description")),
                                                limits(schema)) if part)
            lines.append(f"| `{param['name']}` | {param['in']} | {type_of(schema)} | "
                         f"{'yes' if param.get('required') else 'no'} | {cell(notes)} |")
        lines.append("")
    body = op.get("requestBody")
    if body:
        for media, content in body.get("content", {}).items():
            lines += [f"Request body ({media}): {type_of(content.get('schema', {}))}.", ""]
    lines += ["| Status | Meaning | Body | Headers |", "|---|---|---|---|"]
    errors = [status for status in op.get("responses", {}) if not status.startswith("2")]
    for status, answer in op.get("responses", {}).items():
        if status in errors:
            continue
        bodies = ", ".join(f"{type_of(content.get('schema', {}))} ({media})" if content.get("schema") else media
                           for media, content in answer.get("content", {}).items()) or "none"
        headers = ", ".join(f"`{name}`" for name in answer.get("headers", {})) or ""
        lines.append(f"| {status} | {cell(answer.get('description'))} | {bodies} | {headers} |")
    if errors:
        lines += ["", f"[Errors](#errors): {', '.join(errors)}."]
    return [*lines, ""]


def error_table(document: dict[str, Any]) -> list[str]:
    """Every error status any route answers, said once (they mean the same on every route)."""
    seen: dict[str, dict[str, Any]] = {}
    for methods in document.get("paths", {}).values():
        for op in methods.values():
            for status, answer in op.get("responses", {}).items():
                if not status.startswith("2"):
                    seen.setdefault(status, answer)
    lines = ["## Errors", "", "| Status | Meaning | Body | Headers |", "|---|---|---|---|"]
    for status, answer in sorted(seen.items()):
        bodies = ", ".join(type_of(content.get("schema", {})) for content in answer.get("content", {}).values())
        headers = "; ".join(f"`{name}`: {cell(header.get('description'))}"
                            for name, header in answer.get("headers", {}).items())
        lines.append(f"| {status} | {cell(answer.get('description'))} | {bodies} | {headers} |")
    return [*lines, ""]


def component(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"### {name}", ""]
    if schema.get("description"):
        lines += [cell(schema["description"]), ""]
    if "properties" not in schema:
        return [*lines, f"{type_of({k: v for k, v in schema.items() if k != 'description'})}.", ""]
    required = set(schema.get("required", []))
    lines += ["| Field | Type | Required | Notes |", "|---|---|---|---|"]
    for field, spec in schema["properties"].items():
        notes = "; ".join(part for part in (cell(spec.get("description")), limits(spec)) if part)
        lines.append(f"| `{field}` | {type_of(spec)} | {'yes' if field in required else 'no'} | {cell(notes)} |")
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        lines.append(f"| (any other) | {type_of(extra)} | no | the kind's settings |")
    return [*lines, ""]


def render(document: dict[str, Any]) -> str:
    lines = [HEADER, *error_table(document)]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, methods in document.get("paths", {}).items():
        for method, op in methods.items():
            by_tag.setdefault((op.get("tags") or ["api"])[0], []).append((method, path, op))
    for tag, ops in by_tag.items():
        lines += [f"## Routes: {tag}", ""]
        for method, path, op in ops:
            lines += operation(method, path, op)
    lines += ["## Schemas", ""]
    for name, schema in sorted(document.get("components", {}).get("schemas", {}).items()):
        lines += component(name, schema)
    return "\n".join(lines).rstrip() + "\n"


def current() -> str:
    """The page for the app as it is now (no database is touched)."""
    from bindery.settings import Settings
    from bindery.web.app import create_app

    return render(create_app(Settings(database_url="sqlite:///unused.db")).openapi())


if __name__ == "__main__":
    print(current(), end="")
