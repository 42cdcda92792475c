"""Settings come from the environment with the POLICYTRACK_ prefix, one class per service."""

from __future__ import annotations

import pytest

from services.audit.settings import AuditSettings
from services.notifications.settings import NotificationsSettings
from services.tasks.settings import TasksSettings


def test_defaults_follow_the_fixed_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("POLICYTRACK_"):
            monkeypatch.delenv(name)
    assert (TasksSettings().port, NotificationsSettings().port, AuditSettings().port) == (8001, 8002, 8003)
    assert TasksSettings().kafka.bootstrap_servers == "127.0.0.1:9092"
    assert TasksSettings().runtime.env == "prod"


def test_environment_overrides_per_service_and_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICYTRACK_TASKS_PORT", "9101")
    monkeypatch.setenv("POLICYTRACK_KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("POLICYTRACK_ENV", "dev")
    tasks = TasksSettings()
    assert tasks.port == 9101
    assert tasks.kafka.bootstrap_servers == "kafka:9092"
    assert tasks.runtime.env == "dev"
    assert AuditSettings().port == 8003


def test_invalid_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICYTRACK_ENV", "staging")
    with pytest.raises(ValueError, match="env"):
        TasksSettings()
