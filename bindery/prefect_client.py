"""Prefect's client pointed at the server Bindery's settings name. Prefect reads its own settings from the
environment once, at import; Bindery passes the values it read (bindery.settings) on explicitly."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bindery.settings import Settings


@contextmanager
def prefect_client(settings: Settings) -> Iterator[None]:
    """Inside: Prefect's client calls ``settings.prefect_api_url`` with ``settings.prefect_api_auth_string``
    (both left to Prefect where unset: a flow run's or test harness's own server)."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    updates: dict[Any, Any] = {}
    if settings.prefect_api_url:
        updates[PREFECT_API_URL] = settings.prefect_api_url
    if settings.prefect_api_auth_string:
        updates[PREFECT_API_AUTH_STRING] = settings.prefect_api_auth_string
    with temporary_settings(updates=updates):
        yield
