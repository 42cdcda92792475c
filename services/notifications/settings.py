"""Settings of the notifications service (environment prefix ``POLICYTRACK_NOTIFICATIONS_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="POLICYTRACK_NOTIFICATIONS_", extra="ignore")

    port: int = 8002
    consumer_group: str = "policytrack-notifications"
