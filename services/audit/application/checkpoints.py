"""Signed checkpoints of the trail's Merkle tree (C2SP tlog-checkpoints in signed notes),
published on ``policy.audit`` so that a copy of them exists outside the database: the one copy
an attacker of the database cannot edit; and the reports of records refused for their writer's
proof.

A checkpoint is recorded, published, and only then marked as published; one whose publish
failed is published on the next round. A refused record is reported the same way, once.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.audit.adapters.chaining import decode_headers
from services.audit.adapters.schema import RefusedRecord, TrailEntry
from services.audit.adapters.store import AuditStore, EntryFilter
from shared.clock import Clock, utc_now
from shared.contract.catalog import ForgeryDetected, TreeCheckpoint
from shared.contract.codec import decode
from shared.contract.envelope import new_event
from shared.kafka.producer import EventProducer
from shared.logging import get_logger
from shared.provenance.keys import SigningKey, TrustStore, public_pem
from shared.supervision import BackgroundWork, Health
from shared.transparency.notes import checkpoint_body, sign_note

log = get_logger(__name__)
ACTOR = "policytrack-audit"
OWNER = "audit"
"""Whose key signs the checkpoints: the only owner trusted to write ``policy.audit``."""
CHECKPOINT_TYPE = TreeCheckpoint.event_type


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Checkpointer:
    store: AuditStore
    signing_key: SigningKey
    producer: EventProducer
    chain_id: str
    origin: str
    """The log's origin: the first line of its checkpoints, and the name its notes are signed under."""
    interval: float
    may_sign: Callable[[], bool] = lambda: True
    """False while the store is not known to agree with the log: a forged head is never signed."""
    clock: Clock = utc_now

    async def run(self, health: Health, work: BackgroundWork) -> None:
        """A round now and then every ``interval``; a failed round raises, and its supervisor
        runs this again after a backoff (the unpublished checkpoint goes out then)."""
        while True:
            await self.round()
            health.healthy()
            if await work.sleep(self.interval):
                return

    async def round(self) -> TreeCheckpoint | None:
        for row in await self.store.checkpoints(unpublished_only=True):
            if row.note is not None:  # a checkpoint of the chain alone, from before the tree: not republished
                await self._publish(self._event(row._mapping))
        for refusal in await self.store.refused_records(unreported_only=True):
            await self._report(refusal)
        return await self.checkpoint()

    async def _report(self, refusal: RefusedRecord) -> None:
        """``trail.forgery_detected`` for a record refused at ingest, then marked reported."""
        claimed = decode(refusal.key, refusal.value, decode_headers(refusal.headers))
        report = ForgeryDetected(
            chain=self.chain_id,
            record_topic=refusal.topic,
            record_partition=refusal.partition,
            record_offset=refusal.offset,
            record_sha256=hashlib.sha256(refusal.value or b"").hexdigest(),
            reason=refusal.reason,
            claimed_type=getattr(claimed, "type", None),
            claimed_id=getattr(claimed, "id", None),
        )
        event_id = f"forgery:{self.chain_id}:{refusal.topic}:{refusal.partition}:{refusal.offset}"
        await self.producer.publish(new_event(report, actor=ACTOR, id=event_id, time=self.clock()))
        await self.store.mark_reported(refusal.topic, refusal.partition, refusal.offset)
        log.warning("forgery reported", topic=refusal.topic, partition=refusal.partition, offset=refusal.offset)

    async def checkpoint(self) -> TreeCheckpoint | None:
        """Signs the tree's head when entries other than checkpoints arrived since the last one."""
        if not self.may_sign():
            return None
        head = self.store.head
        existing = await self.store.checkpoints()
        last = existing[-1].sequence if existing else 0
        if head.sequence <= last or await self._only_checkpoints_since(last):
            return None
        signed_at = self.clock()
        root = base64.b64encode(head.tree.root()).decode()
        body = checkpoint_body(self.origin, head.sequence, head.tree.root())
        note = sign_note(body, self.origin, self.signing_key)
        signature = self.signing_key.sign_b64(body.encode())
        await self.store.add_checkpoint(
            head.sequence, head.hash, signed_at, self.signing_key.key_id, signature, root, note
        )
        checkpoint = TreeCheckpoint(
            chain=self.chain_id,
            size=head.sequence,
            root_hash=root,
            head_hash=head.hash,
            note=note,
            key_id=self.signing_key.key_id,
            signed_at=signed_at,
        )
        await self._publish(checkpoint)
        log.info("checkpoint signed", size=head.sequence, root_hash=root)
        return checkpoint

    async def published(self, trusted: TrustStore) -> dict[str, Any]:
        """Every checkpoint of the chain, the key that signs now and every key that verifies."""
        return {
            "chain": self.chain_id,
            "key_id": self.signing_key.key_id,
            "public_key": public_pem(self.signing_key.public_key),
            "keys": [{"key_id": key.kid, "public_key": public_pem(key.public)} for key in trusted.of(OWNER)],
            "checkpoints": [dict(row._mapping) for row in await self.store.checkpoints()],
        }

    def _event(self, row: Any) -> TreeCheckpoint:
        return TreeCheckpoint(
            chain=self.chain_id,
            size=row["sequence"],
            root_hash=row["root_hash"],
            head_hash=row["head_hash"],
            note=row["note"],
            key_id=row["key_id"],
            signed_at=parse_time(row["signed_at"]),
        )

    async def _publish(self, checkpoint: TreeCheckpoint) -> None:
        await self.producer.publish(new_event(checkpoint, actor=ACTOR, time=checkpoint.signed_at))
        await self.store.mark_published(checkpoint.size)

    async def _only_checkpoints_since(self, sequence: int) -> bool:
        rows, _ = await self.store.page(TrailEntry, EntryFilter(after_sequence=sequence), 1000)
        return bool(rows) and all(row.event_type == CHECKPOINT_TYPE for row in rows) and len(rows) < 1000
