"""Wires the audit service: settings -> store, ingestion, checkpoints, HTTP."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from services.audit.chain import CheckpointSigner
from services.audit.handlers import Checkpointer, Ingestor
from services.audit.settings import AuditSettings
from services.audit.store import AuditStore
from shared.auth import TokenVerifier
from shared.kafka.producer import EventProducer


@dataclass
class AuditRuntime:
    settings: AuditSettings
    verifier: TokenVerifier
    store: AuditStore
    signer: CheckpointSigner
    ingestor: Ingestor
    checkpointer: Checkpointer
    producer: EventProducer
    caught_up: bool = False
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        await self.store.open()
        await self.producer.start()
        await self.ingestor.start()
        self._tasks = [asyncio.create_task(self.ingestor.run(), name="audit-ingest"),
                       asyncio.create_task(self.checkpointer.run(), name="audit-checkpoints")]  # fmt: skip

    async def stop(self) -> None:
        self.ingestor.stop()
        self.checkpointer.stop()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.producer.stop()
        await self.store.close()

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        running = bool(self._tasks) and not any(task.done() for task in self._tasks)
        lag = await self.ingestor.lag() if running else -1
        self.caught_up = self.caught_up or lag == 0
        return running and self.caught_up, {"lag": lag, "entries": self.store.head.sequence}


def bootstrap(settings: AuditSettings | None = None) -> AuditRuntime:
    settings = settings or AuditSettings()
    verifier = TokenVerifier(settings.auth, settings.runtime)
    store = AuditStore(settings.database_url())
    signer = CheckpointSigner.from_file(settings.signing_key_file(), create=settings.runtime.env != "prod")
    producer = EventProducer(settings.kafka, client_id="policytrack-audit")
    return AuditRuntime(
        settings=settings, verifier=verifier, store=store, signer=signer,
        ingestor=Ingestor(settings.kafka, store, settings.batch_size),
        checkpointer=Checkpointer(store, signer, producer, settings.checkpoint_interval_seconds),
        producer=producer,
    )  # fmt: skip
