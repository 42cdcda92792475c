"""Settings of the tasks service (environment prefix ``POLICYTRACK_TASKS_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class TasksSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="POLICYTRACK_TASKS_", extra="ignore")

    port: int = 8001
    consumer_group: str = "policytrack-tasks"
