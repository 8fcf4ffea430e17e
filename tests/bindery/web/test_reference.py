"""The OpenAPI document describes every answer, and the docs' HTTP API reference page says what it says."""

from __future__ import annotations

from pathlib import Path

from bindery.settings import Settings
from bindery.web import reference
from bindery.web.app import create_app

PAGE = Path(__file__).resolve().parents[3] / "docs" / "api" / "reference.md"


def test_every_route_declares_its_answers() -> None:
    document = create_app(Settings(database_url="sqlite:///unused.db")).openapi()
    missing = []
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            for status, answer in op["responses"].items():
                if status == "204":
                    assert "content" not in answer, (method, path)
                    continue
                schemas = [content.get("schema") for content in answer.get("content", {}).values()]
                if not schemas or not all(schemas):
                    missing.append(f"{method.upper()} {path} {status}")
            assert {"401", "403", "404", "422", "503"} <= set(op["responses"]), (method, path)
            assert "Retry-After" in op["responses"]["503"]["headers"], (method, path)
    assert not missing, f"answers without a schema: {missing}"
    assert len(document["paths"]) >= 15


def test_reference_page_is_generated_from_the_current_document() -> None:
    page = reference.current()
    assert "### GET `/api/batches/{bid}/devices`" in page and "### BindingPublic" in page
    assert PAGE.read_text() == page, (
        "docs/api/reference.md is stale: run `.venv/bin/python -m bindery.web.reference > docs/api/reference.md`")
