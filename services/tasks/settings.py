"""Settings of the tasks service (environment prefix ``POLICYTRACK_TASKS_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.auth import AuthSettings
from shared.settings import ServiceSettings


class TasksSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="POLICYTRACK_TASKS_", extra="ignore")

    port: int = 8001
    consumer_group: str = "policytrack-tasks"
    transactional_id: str = Field(
        default="policytrack-tasks-0",
        description="stable per writing instance: a restarted or second instance with it fences the old one",
    )
    auth: AuthSettings = Field(default_factory=AuthSettings)
