"""Settings of the tasks service (environment prefix ``POLICYTRACK_TASKS_``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.auth import AuthSettings
from shared.contract.codes import Department
from shared.kafka.access import TASKS
from shared.settings import ServiceSettings


class TasksSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="POLICYTRACK_TASKS_", extra="ignore")
    principal: ClassVar[str | None] = TASKS.name

    port: int = 8001
    consumer_group: str = "policytrack-tasks"
    transactional_id: str = Field(
        default="policytrack-tasks-0",
        description="stable per writing instance: a restarted or second instance with it fences the old one",
    )
    progress_report_interval: timedelta = Field(
        default=timedelta(days=30),
        description="a lead department reports each open task's progress at least this often (its to-do list says so)",
    )
    watch_interval_seconds: float = Field(
        default=60.0, ge=0, description="how often tasks' health and plans' evaluations are assessed; 0: never"
    )
    evaluation_month_seconds: float | None = Field(
        default=None, gt=0, description="development only: a month of evaluation cycles lasts this many seconds"
    )
    snapshot_interval_seconds: float = Field(
        default=30.0, ge=0, description="how often a snapshot of the state is written if it changed; 0: never"
    )
    snapshot_path: Path | None = Field(
        default=None, description="the snapshot file; by default <data dir>/tasks/<transactional id>.snapshot.sqlite"
    )
    partitioned_writers: bool = Field(
        default=False,
        description="several instances: each decides the partitions the consumer group gives it, forwards the rest",
    )
    forward_timeout_seconds: float = Field(
        default=10.0, gt=0, description="how long a forwarded command waits for its owner's answer before 503"
    )
    group_session_timeout_ms: int = Field(
        default=6_000, ge=1_000, description="how soon the group notices a dead instance and moves its partitions"
    )
    signed_departments: list[Department] = Field(
        default_factory=list,
        description="departments whose commands over HTTP must carry an RFC 9421 signature by their registered key",
    )
    evidence_path: Path | None = Field(
        default=None,
        description="where evidence files are kept (default: the data directory's evidence/); instances share it",
    )
    evidence_dsn: str | None = Field(
        default=None,
        description="SQLAlchemy URL of PostgreSQL (postgresql+asyncpg://...) to keep evidence in, shared by every "
        "instance; on disk (evidence_path) when unset",
    )
    evidence_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1, description="the largest evidence file taken")
    auth: AuthSettings = Field(default_factory=AuthSettings)

    def evidence_folder(self) -> Path:
        return self.evidence_path or self.runtime.data_dir / "evidence"

    def snapshot_file(self) -> Path:
        return self.snapshot_path or self.runtime.data_dir / "tasks" / f"{self.transactional_id}.snapshot.sqlite"
