"""Settings: read once per process and environment, every variable Bindery reads among them, bad values
said in one line, and nothing outside bindery/settings.py reading the environment."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from bindery.cli.demo import demo_environment
from bindery.errors import BadInput
from bindery.settings import UNPREFIXED_NAMES, Settings, child_environment, get_settings, reset_settings

ROOT = Path(__file__).resolve().parents[2]


def test_settings_are_built_once_while_the_environment_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_HTTP_TIMEOUT", "12")
    first = get_settings()
    assert get_settings() is first and first.http_timeout == 12
    monkeypatch.setenv("BINDERY_HTTP_TIMEOUT", "13")  # a changed variable is noticed
    changed = get_settings()
    assert changed is not first and changed.http_timeout == 13
    reset_settings()
    assert get_settings() is not changed


def test_prefect_client_variables_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://prefect.example:4200/api")
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "erp:secret")
    monkeypatch.setenv("PREFECT_UI_URL", "https://ui.example")
    monkeypatch.setenv("BINDERY_ALERT_WEBHOOK_URL", "https://hooks.example/x")
    settings = get_settings()
    assert (settings.prefect_api_url, settings.prefect_api_auth_string, settings.prefect_ui_url,
            settings.alert_webhook_url) == ("http://prefect.example:4200/api", "erp:secret", "https://ui.example",
                                            "https://hooks.example/x")
    assert "erp:secret" not in repr(settings) and "hooks.example" not in repr(settings)


@pytest.mark.parametrize("name", ["PREFECT_HOME", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_a_changed_unprefixed_variable_is_noticed_too(name: str, monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    assert {"PREFECT_API_URL", "PREFECT_HOME", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"} <= UNPREFIXED_NAMES
    assert not any(n.startswith("BINDERY_") for n in UNPREFIXED_NAMES)
    monkeypatch.setenv(name, str(tmp_path / "one"))
    first = get_settings()
    monkeypatch.setenv(name, str(tmp_path / "two"))
    assert str(getattr(get_settings(), name.lower())) == str(tmp_path / "two") != str(getattr(first, name.lower()))


def test_a_bad_value_is_one_line_naming_the_variable_not_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_HTTP_TIMEOUT", "s3cr3t-looking")
    monkeypatch.setenv("BINDERY_QUOTA_SHARING", "everywhere")
    with pytest.raises(BadInput) as raised:
        get_settings()
    message = str(raised.value)
    assert "BINDERY_HTTP_TIMEOUT: input should be a valid number" in message
    assert "BINDERY_QUOTA_SHARING: input should be 'database', 'prefect' or 'process'" in message
    assert "s3cr3t" not in message and "\n" not in message


def test_child_environment_passes_settings_on_without_touching_this_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_LOGGING_LEVEL", "DEBUG")
    before = dict(os.environ)
    env = child_environment(Settings(prefect_api_url="http://p:1/api"),
                            defaults={"PREFECT_LOGGING_LEVEL": "WARNING", "X_UNSET_HERE": "d"},
                            overrides={"BINDERY_ALLOW_PRIVATE_TARGETS": "1"})
    assert env["PREFECT_API_URL"] == "http://p:1/api"
    assert env["PREFECT_LOGGING_LEVEL"] == "DEBUG" and env["X_UNSET_HERE"] == "d"  # a default yields to a set value
    assert env["BINDERY_ALLOW_PRIVATE_TARGETS"] == "1"
    assert dict(os.environ) == before


def test_the_demo_gives_its_steps_their_environment_and_keeps_its_own(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_HOME", str(tmp_path / "home"))
    for name in ("PREFECT_HOME", "PREFECT_LOGGING_LEVEL", "BINDERY_ALLOW_PRIVATE_TARGETS"):
        monkeypatch.delenv(name, raising=False)
    before = dict(os.environ)
    env = demo_environment(get_settings())
    assert dict(os.environ) == before
    assert env["PREFECT_HOME"] == str((tmp_path / "home" / "prefect").resolve())
    assert (tmp_path / "home" / "prefect").is_dir()
    assert env["PREFECT_LOGGING_LEVEL"] == "WARNING" and env["BINDERY_ALLOW_PRIVATE_TARGETS"] == "1"


READS = re.compile(r"os\.environ|getenv")


def test_only_the_settings_module_reads_the_environment() -> None:
    """`grep -rn "os.environ\\|getenv" bindery flows tasks deployments` finds bindery/settings.py alone."""
    readers = sorted(str(path.relative_to(ROOT))
                     for folder in ("bindery", "flows", "tasks", "deployments")
                     for path in (ROOT / folder).rglob("*.py")
                     if path.resolve() != (ROOT / "bindery" / "settings.py") and READS.search(path.read_text()))
    assert readers == []
