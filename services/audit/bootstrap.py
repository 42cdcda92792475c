"""Wires the audit service: settings -> keys, store, ingestion, checkpoints, HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.audit.adapters.keys import SigningKey, TrustedKeys, keep_public, load_signing_key
from services.audit.adapters.store import AuditStore
from services.audit.checkpoints import Checkpointer
from services.audit.ingest import Ingestor
from services.audit.settings import AuditSettings
from shared.auth import TokenVerifier
from shared.kafka.producer import EventProducer
from shared.supervision import BackgroundWork, Health


@dataclass
class AuditRuntime:
    settings: AuditSettings
    verifier: TokenVerifier
    store: AuditStore
    signing_key: SigningKey
    trusted_keys: TrustedKeys
    ingestor: Ingestor
    checkpointer: Checkpointer
    producer: EventProducer
    caught_up: bool = False
    work: BackgroundWork = field(default_factory=BackgroundWork)

    async def start(self) -> None:
        await self.store.open()
        await self.producer.start()
        self.work.start("ingest", self.ingestor.run)
        self.work.start("checkpoints", self._checkpoints)

    async def _checkpoints(self, health: Health) -> None:
        await self.checkpointer.run(health, self.work)

    async def stop(self) -> None:
        self.ingestor.stop()
        await self.work.stop()
        await self.producer.stop()
        await self.store.close()

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        working, background = self.work.readiness()
        lag = await self.ingestor.lag()
        self.caught_up = self.caught_up or lag == 0
        details = {
            "lag": lag,
            "entries": self.store.head.sequence,
            "chain": self.settings.chain_id,
            "background": background,
        }
        return working and self.caught_up, details


def bootstrap(settings: AuditSettings | None = None) -> AuditRuntime:
    settings = settings or AuditSettings()
    verifier = TokenVerifier(settings.auth, settings.runtime)
    store = AuditStore(settings.database_url())
    signing_key = load_signing_key(settings.signing_key_file(), create=settings.runtime.env != "prod")
    keep_public(signing_key, settings.trusted_keys_folder())
    trusted = TrustedKeys.load(signing_key, settings.trusted_keys_folder(), settings.trusted_public_keys)
    producer = EventProducer(settings.kafka, client_id="policytrack-audit")
    ingestor = Ingestor(settings.kafka, store, settings.batch_size, settings.chain_id)
    checkpointer = Checkpointer(
        store,
        signing_key,
        producer,
        settings.chain_id,
        settings.checkpoint_interval_seconds,
        may_sign=lambda: ingestor.consistent,
    )
    return AuditRuntime(
        settings=settings,
        verifier=verifier,
        store=store,
        signing_key=signing_key,
        trusted_keys=trusted,
        ingestor=ingestor,
        checkpointer=checkpointer,
        producer=producer,
    )
