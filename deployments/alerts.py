"""The Prefect side of Bindery's alerts: a webhook notification block and one automation that sends every
failed provisioning run and every drift found to it (made by `bindery deploy` and `make deploy`)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from bindery.alerts import AUTOMATION, BLOCK, EVENTS
from bindery.deployments.automations import save
from bindery.errors import BadInput

SUBJECT = "Bindery: {{ event.event }} for batch {{ event.resource.name }}"
BODY = "{{ event.payload | tojson }}"  # bid, cloud_api, account, counts, message


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInput("BINDERY_ALERT_WEBHOOK_URL: give an http(s) URL")
    return url


def install(webhook_url: str) -> str:
    """Create or update the block and the automation (same names, so a second deploy changes nothing);
    the URL is kept among the block's secret values, shown obfuscated by Prefect. Returns the
    automation's id."""
    from prefect.automations import Automation
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import EventTrigger, Posture

    block = CustomWebhookNotificationBlock(
        name=BLOCK, url="{{webhook_url}}", method="POST", secrets={"webhook_url": check_url(webhook_url)},
        json_data={"subject": "{{subject}}", "body": "{{body}}"}, timeout=10)
    block_id = block.save(BLOCK, overwrite=True)
    automation = Automation(
        name=AUTOMATION, description="Bindery: failed provisioning runs and drift found, to the alert webhook",
        trigger=EventTrigger(expect=set(EVENTS), match={"prefect.resource.id": "bindery.batch.*"},
                             posture=Posture.Reactive, threshold=1, within=timedelta(0)),
        actions=[SendNotification(block_document_id=block_id, subject=SUBJECT, body=BODY)])
    return save(automation)
