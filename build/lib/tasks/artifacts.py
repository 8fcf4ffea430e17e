"""Artifacts the flows publish; keys derived from names so each batch has its own history."""

from __future__ import annotations

import re
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact


def artifact_key(prefix: str, name: str) -> str:
    """Prefect keys allow lower-case letters, digits and dashes only."""
    return f"{prefix}-{re.sub(r'[^a-z0-9-]+', '-', name.lower()).strip('-')}"[:100]


def publish_table(prefix: str, name: str, rows: list[dict[str, Any]], description: str) -> None:
    create_table_artifact(key=artifact_key(prefix, name), table=rows, description=description)


def publish_problems(prefix: str, name: str, title: str, problems: list[str], limit: int = 200) -> None:
    lines = [f"# {title}", "", *[f"- {p}" for p in problems[:limit]]]
    if len(problems) > limit:
        lines.append(f"- … and {len(problems) - limit} more")
    create_markdown_artifact(key=artifact_key(prefix, name), markdown="\n".join(lines), description=title)
