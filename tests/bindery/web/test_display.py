"""How pages say things: one time format with its zone, full flow-run ids linked to the Prefect UI, the
drift chart's bars (audit events as sentences: tests/bindery/test_audit.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from bindery.web.display import flow_run_link, local_time, trend_chart

RUN_ID = "51fc26b7-61b6-49bb-9a4e-0c2d3e4f5a6b"


def test_times_are_local_with_their_zone_and_the_instant_for_machines() -> None:
    shown = str(local_time(datetime(2026, 12, 2, 17, 3, 9, tzinfo=UTC)))
    assert re.fullmatch(r'<time datetime="2026-12-02T17:03:09Z">2026-12-02 \d\d:\d\d:09 [A-Z+\-0-9]+</time>', shown)
    assert str(local_time("2026-12-02T17:03:09+00:00")) == shown, "ISO strings from the records read the same"
    assert str(local_time(None)) == ""


def test_flow_runs_show_their_full_id_linked_to_the_prefect_ui() -> None:
    stored = {"flow_run_id": RUN_ID, "flow_run_url": f"http://prefect:4200/runs/flow-run/{RUN_ID}"}
    assert str(flow_run_link(stored, None)) == (
        f'<a class="flow-run" href="http://prefect:4200/runs/flow-run/{RUN_ID}">{RUN_ID}</a>')
    assert f'href="https://ui.example/runs/flow-run/{RUN_ID}"' in str(
        flow_run_link({"flow_run_id": RUN_ID}, "https://ui.example/"))
    assert str(flow_run_link({"flow_run_id": RUN_ID}, None)) == f'<span class="flow-run">{RUN_ID}</span>'
    assert "href" not in str(flow_run_link({"flow_run_id": RUN_ID, "flow_run_url": "javascript:alert(1)"}, None))
    assert str(flow_run_link({"flow_run_id": None}, "https://ui.example")) == ""


def test_the_drift_chart_scales_bars_to_the_largest() -> None:
    chart = str(trend_chart([{"at": "2026-12-01T02:00:00+00:00", "drift": 0},
                             {"at": "2026-12-02T02:00:00+00:00", "drift": 40},
                             {"at": None, "drift": 10}]))
    heights = [int(h) for h in re.findall(r'<rect class="(?:drift|in-sync)" [^>]*height="(\d+)"', chart)]
    assert heights == [2, 60, 15]
    assert chart.count('class="drift"') == 2 and ">40</text>" in chart and "40 with drift" in chart
