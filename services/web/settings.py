"""Settings of the web dashboard (environment prefix ``POLICYTRACK_WEB_``)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.auth import AuthSettings
from shared.bounds import Bound
from shared.settings import ServiceSettings


class WebSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="POLICYTRACK_WEB_", extra="ignore")

    port: int = 8000
    tasks_url: str = "http://127.0.0.1:8001"
    notifications_url: str = "http://127.0.0.1:8002"
    audit_url: str = "http://127.0.0.1:8003"
    session_lifetime: timedelta = Field(default=timedelta(hours=8), description="a session ends after this")
    sessions: Bound = Field(
        default=Bound(per_user=20, in_all=10_000, retry_after_seconds=60),
        description="sessions per user (their oldest ends when they sign in once more) and for everyone "
        "together (sign-in refused with 429 past it); JSON",
    )
    stream_timeout_seconds: float = Field(
        default=60.0, gt=0, description="a relayed stream that sends nothing for this long is closed"
    )
    auth: AuthSettings = Field(default_factory=AuthSettings)

    @property
    def dev(self) -> bool:
        return self.runtime.env == "dev"
