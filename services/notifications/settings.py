"""Settings of the notifications service (environment prefix ``POLICYTRACK_NOTIFICATIONS_``)."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.notifications.adapters.mail import SmtpSettings
from shared.auth import AuthSettings
from shared.bounds import Bound
from shared.kafka.access import NOTIFICATIONS
from shared.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="POLICYTRACK_NOTIFICATIONS_", extra="ignore")
    principal: ClassVar[str | None] = NOTIFICATIONS.name

    port: int = 8002
    lead_times: list[timedelta] = Field(
        default_factory=lambda: [timedelta(days=30), timedelta(days=7), timedelta(days=1)],
        description="how long before a deadline 'approaching' alerts go out (ISO 8601 durations or seconds)",
    )
    grace: timedelta = timedelta(0)
    escalate_after: timedelta = timedelta(days=7)
    retry_period: timedelta = Field(default=timedelta(hours=24), description="how long a delivery is retried")
    retry_base_seconds: float = Field(default=1.0, gt=0)
    retry_max_seconds: float = Field(default=600.0, gt=0)
    delivery_timeout_seconds: float = Field(default=10.0, gt=0)
    subscriber_queue_limit: int = Field(default=10_000, ge=1)
    subscriber_concurrency: int = Field(
        default=8, ge=1, le=256, description="deliveries in flight at once to one subscriber (a task's in order)"
    )
    owner_in_flight: int = Field(
        default=16,
        ge=1,
        description="deliveries in flight at once to the subscriptions of one user together: one user's slow "
        "endpoints cannot take the connections every other subscriber's deliveries need",
    )
    subscriptions: Bound = Field(
        default=Bound(per_user=50, in_all=20_000),
        description="subscriptions one user may hold, and everyone together (JSON; 429 over it)",
    )
    streams: Bound = Field(
        default=Bound(per_user=5, in_all=500),
        description="live alert streams open at once per user, and for everyone together (JSON; 429 over it)",
    )
    live_alerts_kept: int = Field(
        default=1024,
        ge=1,
        description="the latest alerts kept for the live streams (up to twice as many): a stream resuming from "
        "further back reads the log with a consumer of its own until it has caught up",
    )
    allow_private_networks: bool = Field(default=False, description="deliver to private and loopback addresses")
    allowed_hosts: list[str] = Field(default_factory=list, description="webhook hosts allowed whatever they resolve to")
    sealing_key: str | None = Field(default=None, description="Fernet key that seals webhook secrets on the log")
    snapshot_interval_seconds: float = Field(
        default=30.0, ge=0, description="how often a snapshot of the schedule is written if it changed; 0: never"
    )
    snapshot_path: Path | None = Field(
        default=None, description="the schedule's snapshot; by default <data dir>/notifications/schedule.snapshot.json"
    )
    partitioned: bool = Field(
        default=False,
        description="several instances: each decides and delivers the alerts of the partitions its group gives it",
    )
    owners_group: str = Field(default="policytrack-notifications-owners", description="the group that shares them")
    group_session_timeout_ms: int = Field(
        default=6_000, ge=1_000, description="how soon the group notices a dead instance and moves its partitions"
    )
    smtp: SmtpSettings = Field(
        default_factory=SmtpSettings,
        description='the SMTP server mail goes through (JSON: {"host": ..., "port": 587, "security": "starttls", '
        '"username": ..., "password": ..., "sender": ...}); without a host no mail is sent',
    )
    digest_time: time | None = Field(
        default=time(8, 0), description="when, Beijing time, each day's digest goes to mail readers; null: never"
    )
    auth: AuthSettings = Field(default_factory=AuthSettings)

    def sealing_key_file(self) -> Path:
        return self.runtime.data_dir / "notifications" / "sealing.key"

    def snapshot_file(self) -> Path:
        return self.snapshot_path or self.runtime.data_dir / "notifications" / "schedule.snapshot.json"
