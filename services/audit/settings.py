"""Settings of the audit service (environment prefix ``POLICYTRACK_AUDIT_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class AuditSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="POLICYTRACK_AUDIT_", extra="ignore")

    port: int = 8003
    consumer_group: str = "policytrack-audit"
