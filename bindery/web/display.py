"""How pages say things: one time format, counts with separators, audit events as sentences
(bindery.audit.describe), rates and flow-run links. Jinja filters and globals, registered by
:func:`bindery.web.pages.templates`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup, escape

from bindery.audit import describe


def moment(value: datetime | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def local_time(value: datetime | str | None) -> Markup:
    """Every time on a page: the server's local time with its zone's name, the exact instant (ISO 8601,
    UTC) in ``<time datetime>`` for tools and screen readers."""
    at = moment(value)
    if at is None:
        return Markup("")
    local = at.astimezone()
    return Markup('<time datetime="{}">{} {}</time>').format(
        at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        local.strftime("%Y-%m-%d %H:%M:%S"), local.tzname() or local.strftime("%z"))


def number(value: int | float | None) -> str:
    """1,000 — a count a person reads at a glance."""
    return "" if value is None else f"{value:,}"


def rate(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.1f} devices/s" if value < 100 else f"{value:,.0f} devices/s"


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def flow_run_link(run: Any, prefect_ui: str | None) -> Markup:
    """The full flow-run id, linked to its page in the Prefect UI when that is known."""
    flow_run_id = getattr(run, "flow_run_id", None) if not isinstance(run, dict) else run.get("flow_run_id")
    if not flow_run_id:
        return Markup("")
    url = getattr(run, "flow_run_url", None) if not isinstance(run, dict) else run.get("flow_run_url")
    if not url and prefect_ui:
        url = f"{prefect_ui.rstrip('/')}/runs/flow-run/{flow_run_id}"
    if url and str(url).startswith(("https://", "http://")):
        return Markup('<a class="flow-run" href="{}">{}</a>').format(url, flow_run_id)
    return Markup('<span class="flow-run">{}</span>').format(flow_run_id)


def trend_chart(checks: list[dict[str, Any]], slots: int = 30) -> Markup:
    """The last checks' drift as an SVG bar chart (inline markup, no script, no style attribute): a frame
    of ``slots`` checks, newest right, bars scaled to the largest (labelled); a check without drift is a
    green baseline tick. Each bar's title says when and how many."""
    width, height, bar = 16, 60, 12
    checks = checks[-slots:]
    top = max((int(c.get("drift") or 0) for c in checks), default=0)
    wide = slots * width
    parts = [Markup('<svg class="trend-chart" role="img" width="{0}" height="{1}" viewBox="0 0 {0} {1}">').format(
        wide + 48, height + 8)]
    parts.append(Markup("<title>Devices with drift in the last {} checks, oldest first; most {}</title>").format(
        len(checks), f"{top:,}"))
    parts.append(Markup('<rect class="frame" x="0" y="0" width="{}" height="{}"/>').format(wide, height))
    first = slots - len(checks)
    for i, check in enumerate(checks):
        drift = int(check.get("drift") or 0)
        tall = max(2, round(height * drift / top)) if drift and top else 2
        at = moment(check.get("at"))
        when = at.astimezone().strftime("%Y-%m-%d %H:%M %Z") if at else ""
        parts.append(Markup('<rect class="{}" x="{}" y="{}" width="{}" height="{}"><title>{}: {} with drift</title>'
                            "</rect>").format("drift" if drift else "in-sync", (first + i) * width + 2, height - tall,
                                              bar, tall, when, f"{drift:,}"))
    if top:
        parts.append(Markup('<text x="{}" y="10" class="axis-label">{}</text>').format(wide + 6, f"{top:,}"))
    parts.append(Markup('<text x="{}" y="{}" class="axis-label">0</text></svg>').format(wide + 6, height))
    return Markup("").join(parts)


FILTERS = {"when": local_time, "number": number, "rate": rate, "duration": duration}
GLOBALS = {"flow_run_link": flow_run_link, "trend_chart": trend_chart, "describe": describe, "escape": escape}
