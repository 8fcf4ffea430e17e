"""docs/configuration.md is generated from the Settings model and kept fresh; every setting describes itself."""

from __future__ import annotations

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from bindery import settings_reference
from bindery.settings import Settings


def test_every_setting_has_a_description() -> None:
    assert settings_reference.missing_descriptions(Settings) == []


def test_a_setting_without_a_description_is_refused() -> None:
    class Undocumented(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="BINDERY_")
        said: int = Field(default=1, description="Says what it does")
        silent: int = 2

    assert settings_reference.missing_descriptions(Undocumented) == ["silent"]
    with pytest.raises(ValueError, match="settings without a description: silent"):
        settings_reference.render(Undocumented)


def test_the_committed_page_is_the_generated_one() -> None:
    assert settings_reference.PAGE.read_text() == settings_reference.render(), (
        "docs/configuration.md is stale: run `.venv/bin/python -m bindery.settings_reference`")


def test_the_page_lists_every_setting_with_its_variable_type_and_default() -> None:
    page = settings_reference.render()
    for name in Settings.model_fields:
        assert f"<br>(`{name}`) |" in page
    assert "| `BINDERY_HTTP_TIMEOUT`<br>(`http_timeout`) | number | `30` |" in page
    assert "| `PREFECT_API_URL`<br>(`prefect_api_url`) | text (optional) | — |" in page
    assert ("| `BINDERY_QUOTA_SHARING`<br>(`quota_sharing`) | one of `database`, `prefect`, `process` | `database` |"
            in page)
    assert "| `BINDERY_VERIFY_WORKERS`<br>(`verify_workers`) | integer | CPU count |" in page
