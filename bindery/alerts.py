"""Alerts without polling: a failed provisioning run or a drift found becomes a Prefect event
(resource ``bindery.batch.<BID>``), and a Prefect automation made by ``bindery deploy`` sends it to a
webhook (BINDERY_ALERT_WEBHOOK_URL). Events go out only where a Prefect server is known (in a flow
run, or PREFECT_API_URL set); an alert that cannot be sent is logged, never fails the run."""

from __future__ import annotations

import logging
import sys
from typing import Any

from sqlmodel import Session, select

from bindery.models.accounts import Account, Binding
from bindery.settings import get_settings

PROVISIONING_FAILED = "bindery.provisioning.failed"
DRIFT_FOUND = "bindery.reconcile.drift"
EVENTS = (PROVISIONING_FAILED, DRIFT_FOUND)
AUTOMATION = BLOCK = "bindery-alerts"
log = logging.getLogger(__name__)


def account_of(session: Session, batch_id: int) -> str:
    return session.exec(select(Account.name).join(Binding, Binding.account_id == Account.id)  # type: ignore[arg-type]
                        .where(Binding.batch_id == batch_id)).first() or ""


def resource(bid: str, cloud_api: str, account: str) -> dict[str, str]:
    return {"prefect.resource.id": f"bindery.batch.{bid}", "prefect.resource.name": bid,
            "bindery.cloud-api": cloud_api, "bindery.account": account}


def emit(event: str, *, bid: str, cloud_api: str, account: str, counts: dict[str, int], message: str) -> None:
    """Emit one event; outside a flow run, wait (10 s at most) until it was handed to the server."""
    server = get_settings().prefect_api_url
    if "prefect" not in sys.modules and not server:
        return  # no flow run without Prefect loaded, and no server named: nowhere to send it
    from prefect.context import FlowRunContext

    in_flow_run = FlowRunContext.get() is not None
    if not in_flow_run and not server:
        return
    payload: dict[str, Any] = {"bid": bid, "cloud_api": cloud_api, "account": account, "counts": counts,
                               "message": message}
    try:
        from prefect.events import emit_event
        from prefect.events.worker import EventsWorker

        emit_event(event=event, resource=resource(bid, cloud_api, account), payload=payload)
        if not in_flow_run:
            EventsWorker.drain_all(timeout=10)
    except Exception as exc:  # an alert lost is logged; the run's outcome stands
        log.warning("alert %s for batch %s not sent: %s", event, bid, exc)
