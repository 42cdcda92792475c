"""Settings read from the environment (prefix ``POLICYTRACK_``), one class per concern.

Each service composes these into its own settings class in ``services/<name>/settings.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class KafkaSettings(BaseSettings):
    """Where the broker is and how the project's topics are laid out on it."""

    model_config = SettingsConfigDict(env_prefix="POLICYTRACK_KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    partitions: int = Field(default=3, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    min_insync_replicas: int = Field(default=1, ge=1)
    request_timeout_ms: int = Field(default=30_000, ge=1_000)


class RuntimeSettings(BaseSettings):
    """How a process runs: its environment, logging and where it keeps local data."""

    model_config = SettingsConfigDict(env_prefix="POLICYTRACK_", extra="ignore")

    env: Literal["dev", "test", "prod"] = "prod"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    data_dir: Path = PROJECT_ROOT / ".data"
    keys_dir: Path = Field(default=PROJECT_ROOT / ".keys", description="private keys, apart from the data they protect")


class ServiceSettings(BaseSettings):
    """The part every service has: its HTTP edge, the broker and its runtime."""

    model_config = SettingsConfigDict(extra="ignore")

    host: str = "127.0.0.1"
    port: int
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
