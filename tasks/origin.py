"""How the current flow run was started, read from Prefect's run context for the run history."""

from __future__ import annotations

from bindery.runs import Origin

CONSOLE_TAG = "bindery:console"  # the console tags the flow runs it starts


def flow_origin() -> Origin:
    """console (tagged by the console), recovery (a crashed run started again: it names the run it
    replaces), schedule, prefect-api (a deployment run over REST: ERP systems, the Prefect UI) or flow
    (the flow function called directly)."""
    from prefect.context import FlowRunContext

    from bindery.recovery import replaced_by_tags

    context = FlowRunContext.get()
    run = context.flow_run if context is not None else None
    if run is None:
        return Origin("flow")
    replaces = replaced_by_tags(run.tags or [])
    if replaces:
        via = "recovery"
    elif CONSOLE_TAG in (run.tags or []):
        via = "console"
    elif run.auto_scheduled:
        via = "schedule"
    elif run.deployment_id is not None:
        via = "prefect-api"
    else:
        via = "flow"
    return Origin(via, str(run.id), flow_run_link(str(run.id)), replaces)


def flow_run_link(flow_run_id: str) -> str | None:
    """The flow run's page in the Prefect UI (PREFECT_UI_URL, else the API's host); None for a temporary
    in-process server, whose UI is gone with it. Prefect's own settings come first: inside a flow run or
    a test harness they name the server the run is on."""
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    from bindery.settings import get_settings

    settings = get_settings()
    api = PREFECT_API_URL.value() or settings.prefect_api_url or ""
    ui = settings.prefect_ui_url or PREFECT_UI_URL.value() or api.removesuffix("/api")
    return f"{ui.rstrip('/')}/runs/flow-run/{flow_run_id}" if ui else None
