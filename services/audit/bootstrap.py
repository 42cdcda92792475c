"""Wires the audit service: settings -> keys, store, ingestion, checkpoints, HTTP."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from services.audit.adapters.lease import AdvisoryLease, SoleWriter, WriterLease
from services.audit.adapters.store import AuditStore
from services.audit.application import verification
from services.audit.application.checkpoints import OWNER, Checkpointer
from services.audit.application.reports import Reports
from services.audit.application.submissions import Submissions
from services.audit.application.verification_runs import VerificationRuns
from services.audit.entrypoints.ingest import Ingestor
from services.audit.settings import AuditSettings
from shared.auth import TokenVerifier
from shared.bounds import Held
from shared.clock import Clock, utc_now
from shared.kafka.producer import EventProducer
from shared.logging import get_logger
from shared.provenance.keys import KeyFolder, SigningKey, TrustStore
from shared.supervision import BackgroundWork, Health

log = get_logger(__name__)


@dataclass
class AuditRuntime:
    settings: AuditSettings
    verifier: TokenVerifier
    store: AuditStore
    signing_key: SigningKey
    trusted_keys: TrustStore
    ingestor: Ingestor
    checkpointer: Checkpointer
    producer: EventProducer
    lease: WriterLease
    submissions: Submissions
    verifications: VerificationRuns
    verifying: Held
    """Who waits on a verification now."""
    reports: Reports
    clock: Clock = utc_now
    """What "now" is for reports and verification records: the deployment's clock."""
    caught_up: bool = False
    work: BackgroundWork = field(default_factory=BackgroundWork)
    writing: asyncio.Event = field(default_factory=asyncio.Event)
    """Set while this instance holds the writer's lease; every instance serves reads."""

    async def start(self) -> None:
        await self.store.open()
        await self.producer.start()
        self.work.start("lease", self._hold_lease)
        self.work.start("ingest", self._ingest)
        self.work.start("checkpoints", self._checkpoints)

    async def _hold_lease(self, health: Health) -> None:
        """Takes the writer's lease when it is free and checks that it still holds it; on
        losing it, stops ingesting at once (the store's keys refuse a late append anyway)."""
        while True:
            held = await self.lease.try_acquire()
            if held and not self.writing.is_set():
                log.info("writing the chain", chain=self.settings.chain_id)
                self.writing.set()
            elif not held and self.writing.is_set():
                log.warning("lost the writer's lease; standing by", chain=self.settings.chain_id)
                self.writing.clear()
                self.ingestor.stop()
            health.healthy()
            if await self.work.sleep(self.settings.lease_check_seconds):
                return

    async def _until_writing(self, health: Health) -> bool:
        """Waits (healthy: standing by is work too) until this instance writes; True when stopping."""
        while not self.writing.is_set():
            health.healthy()
            if await self.work.sleep(0.2):
                return True
        return False

    async def _ingest(self, health: Health) -> None:
        while not await self._until_writing(health):
            await self.store.open()  # the head as the previous writer left it
            self.ingestor.go_on()
            await self.ingestor.run(health)
            if self.work.stopping.is_set():
                return

    async def _checkpoints(self, health: Health) -> None:
        if not await self._until_writing(health):
            await self.checkpointer.run(health, self.work)

    async def stop(self) -> None:
        self.ingestor.stop()
        await self.work.stop()
        await self.lease.release()
        await self.producer.stop()
        await self.store.close()

    def public_keys(self) -> dict[str, Any]:
        return self.trusted_keys.jwks(OWNER)

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        working, background = self.work.readiness()
        writer = self.writing.is_set()
        lag = await self.ingestor.lag() if writer else None
        self.caught_up = self.caught_up or lag == 0
        details = {
            "role": "writer" if writer else "standby",
            "lag": lag,
            "entries": self.store.head.sequence if writer else await self.store.stored_head(),
            "chain": self.settings.chain_id,
            "refused_records": await self.store.count_refused(),
            "untrusted_checkpoints": self.ingestor.untrusted[:10],
            "background": background,
        }
        return working and (self.caught_up or not writer), details


def bootstrap(settings: AuditSettings | None = None) -> AuditRuntime:
    settings = settings or AuditSettings()
    verifier = TokenVerifier(settings.auth, settings.runtime)
    store = AuditStore(settings.database_url())
    keys = KeyFolder.of(settings.runtime)
    signing_key = keys.signing_key(OWNER, create=settings.runtime.env != "prod", path=settings.signing_key_file())
    trusted = keys.trust(settings.earlier_keys())
    producer = EventProducer(settings.kafka, client_id="policytrack-audit", signing_key=signing_key)
    ingestor = Ingestor(settings.kafka, store, settings.batch_size, settings.chain_id, trusted, settings.log_origin())
    lease = AdvisoryLease(store.engine, settings.chain_id) if store.shared else SoleWriter()
    checkpointer = Checkpointer(
        store,
        signing_key,
        producer,
        settings.chain_id,
        settings.log_origin(),
        settings.checkpoint_interval_seconds,
        may_sign=lambda: ingestor.consistent and runtime.writing.is_set(),
    )
    reports = Reports(store, Held("reports", settings.reports))
    runtime = AuditRuntime(
        settings=settings,
        verifier=verifier,
        store=store,
        signing_key=signing_key,
        trusted_keys=trusted,
        ingestor=ingestor,
        checkpointer=checkpointer,
        producer=producer,
        lease=lease,
        submissions=Submissions(store, reports, producer),
        verifications=VerificationRuns(
            lambda against_log, progress: verification.verify(
                store,
                trusted,
                settings.chain_id,
                settings.log_origin(),
                settings.kafka if against_log else None,
                progress=progress,
                derive_apart_from=settings.verification_second_process_from,
                compare_apart_from=settings.verification_second_process_from,
            )
        ),
        verifying=Held("verifications", settings.verifying),
        reports=reports,
        clock=settings.runtime.clock(),
    )
    return runtime
