"""The NDRC's report submissions. Under an Idempotency-Key a retried POST is answered with the
first submission (the same report id and digest), not recorded a second time; the key's first
answer is kept in this process and found on the trail after a restart."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.audit.adapters.chaining import event_of
from services.audit.adapters.schema import StoredEntry
from services.audit.adapters.store import AuditStore, EntryFilter
from services.audit.application.reports import Reports, digest
from shared.auth import Actor
from shared.contract.catalog import ReportSubmitted
from shared.contract.envelope import CloudEvent, new_event
from shared.domain.refusals import Invalid
from shared.kafka.producer import EventProducer

SUBMISSIONS = uuid.UUID("3f6c1f0e-8f0a-4a51-9b5e-6f0d2a7c9e41")
"""The namespace of the event ids derived from (user, Idempotency-Key)."""


@dataclass(frozen=True)
class Submission:
    report_id: str
    sha256: str
    period_from: datetime
    period_to: datetime
    request_digest: str | None = None

    def answer(self) -> dict[str, Any]:
        period = {"from": self.period_from.isoformat(), "to": self.period_to.isoformat()}
        return {"id": self.report_id, "sha256": self.sha256, "period": period}


class Submissions:
    def __init__(self, store: AuditStore, reports: Reports, producer: EventProducer) -> None:
        self._store, self._reports, self._producer = store, reports, producer
        self._first: dict[tuple[str, str], Submission] = {}
        self._one_at_a_time = asyncio.Lock()
        """Keyed submissions are rare (the NDRC's, a few a year): one lock keeps two concurrent
        requests under one key from both recording."""

    async def submit(
        self, actor: Actor, period_from: datetime, period_to: datetime, keyed: tuple[str, str] | None
    ) -> tuple[Submission, bool]:
        """The submission recorded, or under a key already answered, the first one (True)."""
        if keyed is None:
            return await self._record(actor, period_from, period_to, None), False
        key, digest = keyed
        async with self._one_at_a_time:
            first = self._first.get((actor.user, key)) or await self._on_trail(actor.user, key)
            if first is not None:
                if first.request_digest != digest:
                    raise Invalid("this Idempotency-Key was used for another submission", field="Idempotency-Key")
                return first, True
            made = await self._record(actor, period_from, period_to, keyed)
            self._first[actor.user, key] = made
            return made, False

    async def _record(
        self, actor: Actor, period_from: datetime, period_to: datetime, keyed: tuple[str, str] | None
    ) -> Submission:
        report = await self._reports.implementation(actor.user, period_from, period_to)
        slot = None if keyed is None else _slot(actor.user, keyed[0])
        submitted = ReportSubmitted(
            report_id=f"report-{slot.hex[:16] if slot else uuid.uuid4().hex[:16]}",
            period_from=period_from,
            period_to=period_to,
            sha256=digest(report),
        )
        event = new_event(
            submitted,
            actor=actor.user,
            actordept=actor.department,
            id=None if slot is None else str(slot),
            idempotencykey=keyed and keyed[0],
            requestdigest=keyed and keyed[1],
        )
        await self._producer.publish(event)
        return Submission(submitted.report_id, submitted.sha256, period_from, period_to, keyed and keyed[1])

    async def _on_trail(self, user: str, key: str) -> Submission | None:
        rows, _ = await self._store.page(StoredEntry, EntryFilter(event_id=str(_slot(user, key))), 1)
        for row in rows:
            event = event_of(row)
            if isinstance(event, CloudEvent) and isinstance(data := event.data, ReportSubmitted):
                return Submission(data.report_id, data.sha256, data.period_from, data.period_to, event.requestdigest)
        return None


def _slot(user: str, key: str) -> uuid.UUID:
    return uuid.uuid5(SUBMISSIONS, hashlib.sha256(f"{user}\n{key}".encode()).hexdigest())
