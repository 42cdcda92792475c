"""Settings of the audit service (environment prefix ``POLICYTRACK_AUDIT_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.auth import AuthSettings
from shared.settings import ServiceSettings


class AuditSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="POLICYTRACK_AUDIT_", extra="ignore")

    port: int = 8003
    consumer_group: str = "policytrack-audit"
    dsn: str | None = Field(default=None, description="SQLAlchemy URL of PostgreSQL (postgresql+asyncpg://...); "
                                                      "SQLite in the data folder when unset")  # fmt: skip
    signing_key_path: Path | None = Field(default=None, description="Ed25519 PEM key that signs checkpoints")
    checkpoint_interval_seconds: float = Field(default=60.0, gt=0)
    batch_size: int = Field(default=5000, ge=1)
    auth: AuthSettings = Field(default_factory=AuthSettings)

    def database_url(self) -> str:
        if self.dsn:
            return self.dsn
        return f"sqlite+aiosqlite:///{self.runtime.data_dir / 'audit' / 'audit.db'}"

    def signing_key_file(self) -> Path:
        return self.signing_key_path or self.runtime.data_dir / "audit" / "checkpoint-signing-key.pem"
