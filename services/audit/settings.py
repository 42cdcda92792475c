"""Settings of the audit service (environment prefix ``POLICYTRACK_AUDIT_``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.audit.adapters.derivation import APART_FROM
from services.audit.application.export import APART_FROM as EXPORT_APART_FROM
from shared.auth import AuthSettings
from shared.bounds import Bound
from shared.contract.types import AggregateId
from shared.kafka.access import AUDIT_SERVICE
from shared.provenance.keys import TrustedKey
from shared.settings import ServiceSettings


class AuditSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="POLICYTRACK_AUDIT_", extra="ignore")
    principal: ClassVar[str | None] = AUDIT_SERVICE.name

    port: int = 8003
    dsn: str | None = Field(
        default=None,
        description="SQLAlchemy URL of PostgreSQL (postgresql+asyncpg://...); SQLite in the data folder when unset",
    )
    chain_id: AggregateId = Field(
        default="audit-chain",
        description="names this store's chain in the checkpoints it publishes; one per audit store",
    )
    origin: str | None = Field(
        default=None,
        pattern=r"^[^\s+]+$",
        description="the transparency log's origin, unique per deployment (the first line of its checkpoints "
        "and the name its notes are signed under); by default policytrack.local/<chain id>",
    )
    signing_key_path: Path | None = Field(
        default=None, description="Ed25519 PEM key that signs checkpoints (default: keys folder, not data folder)"
    )
    trusted_keys_dir: Path | None = Field(
        default=None,
        description="public keys (PEM) of signing keys from before the trust store, for checkpoints they signed",
    )
    trusted_public_keys: list[str] = Field(default_factory=list, description="more trusted public keys, PEM")
    checkpoint_interval_seconds: float = Field(default=60.0, gt=0)
    batch_size: int = Field(default=5000, ge=1)
    lease_check_seconds: float = Field(
        default=1.0, gt=0, description="how often the writer checks its lease, and a standby asks for it (PostgreSQL)"
    )
    verifying: Bound = Field(
        default=Bound(per_user=1, in_all=20),
        description="verifications one user may wait on at once, and everyone together (one runs; JSON)",
    )
    verification_second_process_from: int = Field(
        default=APART_FROM,
        ge=0,
        description="entries from which a verification against the log uses processes of its own, on the "
        "other cores: they compare the log with the entries a few partitions each while the verification "
        "walks the chain (a walk alone, after they find something amiss, decodes in a second process)",
    )
    export_second_process_from: int = Field(
        default=EXPORT_APART_FROM,
        ge=0,
        description="entries from which an unfiltered NDJSON export is written by two processes of their own, "
        "on the other core too, a block of the trail each at a time, and sent in order",
    )
    reports: Bound = Field(
        default=Bound(per_user=2, in_all=8),
        description="reports one user may have built at once, and everyone together (JSON)",
    )
    auth: AuthSettings = Field(default_factory=AuthSettings)

    def log_origin(self) -> str:
        return self.origin or f"policytrack.local/{self.chain_id}"

    def database_url(self) -> str:
        if self.dsn:
            return self.dsn
        return f"sqlite+aiosqlite:///{self.runtime.data_dir / 'audit' / 'audit.db'}"

    def signing_key_file(self) -> Path:
        return self.signing_key_path or self.runtime.keys_dir / "audit" / "signing-key.pem"

    def trusted_keys_folder(self) -> Path:
        return self.trusted_keys_dir or self.runtime.keys_dir / "audit" / "trusted"

    def earlier_keys(self) -> list[TrustedKey]:
        """Checkpoint keys trusted as PEM (the folder older versions filed them in, and the
        setting): the audit service's, with no window."""
        folder = self.trusted_keys_folder()
        pems = [path.read_bytes() for path in sorted(folder.glob("*.pem"))] if folder.is_dir() else []
        return [
            TrustedKey.of_pem(pem, "audit") for pem in (*pems, *(text.encode() for text in self.trusted_public_keys))
        ]
