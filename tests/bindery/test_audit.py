"""Audit events as sentences, the console's audit page and `bindery audit` alike: details filled in,
digests and server paths left out, an unknown action still readable."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bindery.audit import describe
from bindery.models.audit import AuditEventPublic


def event(action: str, subject: str, **detail: object) -> AuditEventPublic:
    return AuditEventPublic(id=1, at=datetime.now(UTC), actor="ann@acme.io", action=action, subject=subject,
                            detail=json.dumps(detail))


def test_audit_events_read_as_sentences() -> None:
    assert describe(event("manifest.export", "W001", rows=1000, out="/tmp/manifest-x/manifest.csv",
                          sha256="ab")) == "exported the Manifest File of W001 (1,000 devices)"
    assert describe(event("provision.finish", "W001", cloud_api="lab", provisioned=0, failed=1000)) == (
        "finished provisioning W001 into lab: 0 provisioned, 1,000 not")
    assert describe(event("settings.auto_provision", "Acme", enabled=True, cloud_api="lab")) == (
        "turned automatic provisioning on bind on, into lab")
    unknown = describe(event("some.new_thing", "X", holder="h:1", count=3))
    assert unknown == "some new thing X (count 3)" and "h:1" not in unknown
    assert describe(AuditEventPublic(id=2, at=datetime.now(UTC), actor="a", action="web.login", subject="a",
                                     detail="not json")) == "logged in to the console"
