"""The console's pages as a browser sees them: the app's own page routes, and what a page must show (its main
content, or on a phone the desktop note) and must not have (axe-core's serious or critical violations)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
SERIOUS = ("serious", "critical")


def page_routes(app: FastAPI) -> list[str]:
    """Every GET route of the console (not the JSON API, the static files or the API's docs), as declared."""
    return sorted(path for path, methods in _routes(app.routes, "")
                  if "GET" in methods and not path.startswith("/api/"))


def _routes(routes: list[Any], prefix: str) -> Iterator[tuple[str, set[str]]]:
    """The API routes under an app's or router's routes (FastAPI >= 0.150 keeps an included router whole)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, set(route.methods)
        elif hasattr(route, "original_router"):
            yield from _routes(route.original_router.routes, prefix + route.include_context.prefix)


def fill(path: str, seeds: dict[str, str]) -> str:
    """A route's path with its parameters taken from the seeded data; a parameter without a seed fails."""
    missing = [name for name in re.findall(r"{(\w+)(?::\w+)?}", path) if name not in seeds]
    if missing:
        raise AssertionError(f"page route {path}: no seeded value for {', '.join(missing)} "
                             "(add one to the seeds of tests/bindery/web/test_browser_pages.py)")
    return re.sub(r"{(\w+)(?::\w+)?}", lambda m: seeds[m.group(1)], path)


def axe_source() -> str:
    """axe-core from npm (`make axe`, part of `make test`): missing is a failure, never a skip."""
    if not AXE.exists():
        raise RuntimeError(f"{AXE} is missing: run `make axe` (npm install of the pinned axe-core)")
    return AXE.read_text()


def serious_violations(page: Page, source: str) -> list[str]:
    """axe-core's serious and critical findings on the page as shown (the context must bypass the CSP)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(content=source)
    found: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [f"{v['id']} ({v['impact']}): {v['help']} at {json.dumps([n['target'] for n in v['nodes']][:5])}"
            for v in found if v.get("impact") in SERIOUS]


def shown_problems(page: Page, phone: bool) -> list[str]:
    """What is wrong with what the page shows: no visible heading and content, or on a phone neither its own
    content nor the desktop note (with its link to binding), or content wider than the phone."""
    note, problems = page.locator("#desktop-note"), []
    if page.locator("main").count() != 1:
        return ["not a page of the console (no <main>): a part of a page or a file belongs in FRAGMENTS or DOWNLOADS"]
    if phone and note.count() and note.is_visible():
        if not note.get_by_role("link", name="Bind a product batch").is_visible():
            problems.append("the desktop note has no link to bind")
        if page.locator("#page-content").is_visible():
            problems.append("the desktop note and the desktop content are both shown")
        return problems
    if note.count() and note.is_visible():
        problems.append("the desktop note is shown on a desktop")
    heading = page.locator("main h1").filter(visible=True)
    if heading.count() != 1:
        problems.append(f"{heading.count()} visible h1 in main (want 1)")
    if not page.locator("#page-content").locator("p, table, form, dl, ul, ol, article").filter(visible=True).count():
        problems.append(f"no visible content under the heading: {page.locator('main').inner_text().strip()!r}")
    # clientWidth, not innerWidth: an emulated phone (is_mobile) zooms out to fit wide content, so its
    # innerWidth grows with the overflow; clientWidth stays the device's width.
    if phone and page.evaluate("() => document.documentElement.scrollWidth > document.documentElement.clientWidth"):
        problems.append("wider than the phone (scrolls sideways)")
    return problems
