"""Settings read from the environment (prefix ``POLICYTRACK_``), one class per concern.

Each service composes these into its own settings class in ``services/<name>/settings.py``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import ClassVar, Literal, Self
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.clock import Clock, clock_of
from shared.domain.calendar import WorkingCalendar, arrangements

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class KafkaSettings(BaseSettings):
    """Where the broker is, who this process is to it, and how the project's topics are laid out.

    Every client authenticates (SASL/SCRAM-SHA-512, over TLS with ``SASL_SSL``): the broker
    lets in only the principals it names and grants each what its ACLs say
    (``shared/kafka/access.py``). A password not given here is read from
    ``<credentials_dir>/<username>``, where ``deploy/kafka.sh`` generates it."""

    model_config = SettingsConfigDict(env_prefix="POLICYTRACK_KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    partitions: int = Field(default=3, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    min_insync_replicas: int = Field(default=1, ge=1)
    request_timeout_ms: int = Field(default=30_000, ge=1_000)
    security_protocol: Literal["SASL_PLAINTEXT", "SASL_SSL"] = "SASL_PLAINTEXT"
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    username: str | None = Field(default=None, description="the principal; each service defaults to its own")
    password: SecretStr | None = Field(default=None, description="else read from <credentials_dir>/<username>")
    data_dir: Path = Field(
        default=PROJECT_ROOT / ".data" / "kafka", description="where deploy/kafka.sh keeps the local broker's data"
    )
    credentials_dir: Path | None = Field(
        default=None,
        description="one file per principal holding its password (0600), as deploy/kafka.sh writes them; "
        "by default kafka-credentials beside the local broker's data",
    )
    ssl_cafile: Path | None = Field(default=None, description="with SASL_SSL: the CA of the brokers' certificates")

    @property
    def credentials_folder(self) -> Path:
        return self.credentials_dir or self.data_dir.parent / "kafka-credentials"

    def as_user(self, username: str) -> Self:
        """These settings for ``username``, unless a principal was set explicitly."""
        return self if self.username is not None else self.model_copy(update={"username": username})


class RuntimeSettings(BaseSettings):
    """How a process runs: its environment, logging and where it keeps local data."""

    model_config = SettingsConfigDict(env_prefix="POLICYTRACK_", extra="ignore")

    env: Literal["dev", "test", "prod"] = "prod"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    data_dir: Path = PROJECT_ROOT / ".data"
    keys_dir: Path = Field(default=PROJECT_ROOT / ".keys", description="private keys, apart from the data they protect")
    trust_dir: Path | None = Field(
        default=None, description="the public keys readers trust (trust/<owner>/<kid>.jwk); by default <keys_dir>/trust"
    )
    timezone: str = Field(
        default="Asia/Shanghai", description="where the deployment is: times are shown and due dates read in this zone"
    )
    working_days_file: Path = Field(
        default=PROJECT_ROOT / "deploy" / "working-days.toml",
        description="the State Council's holiday arrangements for years the chinese-calendar library does not know",
    )

    clock_file: Path | None = Field(
        default=None,
        description="development only: read now from this file (a scenario's simulated clock); production refuses it",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        ZoneInfo(zone)  # an unknown zone fails here, at start, not on the first page shown
        return zone

    @model_validator(mode="after")
    def _real_time_outside_development(self) -> Self:
        if self.clock_file is not None and self.env != "dev":
            raise ValueError("POLICYTRACK_CLOCK_FILE is for development: outside it, now is the real time")
        return self

    def clock(self) -> Clock:
        """The real clock; in development, the simulated one when a clock file is set."""
        return clock_of(self.clock_file)

    def working_calendar(self) -> WorkingCalendar:
        """The official calendar of working days in the deployment's zone, with the override file's years."""
        document = tomllib.loads(self.working_days_file.read_text()) if self.working_days_file.exists() else {}
        return WorkingCalendar(ZoneInfo(self.timezone), arrangements(document))


class ServiceSettings(BaseSettings):
    """The part every service has: its HTTP edge, the broker and its runtime."""

    model_config = SettingsConfigDict(extra="ignore")
    principal: ClassVar[str | None] = None
    """The service's own Kafka principal, unless ``POLICYTRACK_KAFKA_USERNAME`` names another."""

    host: str = "127.0.0.1"
    port: int
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)

    def model_post_init(self, context: object, /) -> None:
        if self.principal is not None:
            self.kafka = self.kafka.as_user(self.principal)
