"""Verification of the trail: the chain, the Merkle tree, its signed checkpoints (the store's
rows and the copies published on the log), the columns derived for queries, and every entry
against the Kafka log, byte for byte, with nothing on the log missing from the store; records
refused for their writer's proof are named, and checkpoints that are not evidence reported.

Exact on a live system: it takes a snapshot first (the head and, per partition, the next
offset to ingest, from one committed state), walks only the entries the snapshot holds, and
compares them with the log only up to the snapshot's offsets. What arrives meanwhile is
reported as lag, not as tampering.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from services.audit.adapters.chaining import DERIVED, decode_headers, log_record
from services.audit.adapters.derivation import APART_FROM, Derivation
from services.audit.adapters.log import (
    AUDITED_TOPICS,
    FETCH_BYTES,
    LogReader,
    as_log_record,
    checkpoint_partition,
    read_range,
)
from services.audit.adapters.schema import RefusedRecord, StoredEntry, entries
from services.audit.adapters.store import AuditStore, EntryFilter, Snapshot
from services.audit.application.checkpoints import CHECKPOINT_TYPE, parse_time
from services.audit.domain import evidence
from services.audit.domain.chain import GENESIS, LogRecord, canonical, chain_hash, headers_json
from shared.contract.catalog import TreeCheckpoint
from shared.contract.topics import AUDIT
from shared.kafka.consumer import open_consumer, partitions_of
from shared.provenance.gate import TOPIC_WRITERS, ProofGate, Verdict
from shared.provenance.keys import TrustStore
from shared.settings import KafkaSettings
from shared.transparency.merkle import Frontier

MAX_PROBLEMS = 50
Progress = Callable[[int, int], None]


@dataclass
class Verification:
    ok: bool = True
    entries: int = 0
    checkpoints: int = 0
    checkpoints_on_log: int = 0
    against_log: bool = False
    divergence: dict[str, Any] | None = None
    problems: list[dict[str, Any]] = field(default_factory=list)
    covered: dict[str, Any] = field(default_factory=dict)
    lag: dict[str, Any] = field(default_factory=dict)
    forgeries: list[dict[str, Any]] = field(default_factory=list)
    """Records of the log whose writer's proof fails, kept apart from the trail: each named."""
    untrusted_checkpoints: list[str] = field(default_factory=list)
    """Records that claim to be checkpoints of the chain but are not evidence, and why."""
    tree: dict[str, Any] = field(default_factory=dict)
    """The Merkle tree the walk recomputed: its size and root."""

    def fail(self, sequence: int | None, problem: str, **details: Any) -> None:
        found = {"sequence": sequence, "problem": problem, **details}
        if self.ok:
            self.ok, self.divergence = False, found
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(found)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# By position: a row's attribute lookup by name costs more than the comparison itself.
_stored_derived = itemgetter(*(entries.c.keys().index(name) for name in DERIVED))


async def _with_columns(
    stored: AsyncIterator[list[StoredEntry]], derivation: Derivation, derive: bool
) -> AsyncGenerator[tuple[list[StoredEntry], Sequence[tuple[Any, ...] | None]], None]:
    """Each chunk of entries with their derived columns (none when not ``derive``); the next
    chunk's derivation starts before this one is walked, so a process of its own overlaps them."""
    current = await anext(stored, None)
    started = derivation.ahead(current) if derive and current else None
    while current is not None:
        following = await anext(stored, None)
        following_started = derivation.ahead(following) if derive and following else None
        if started is None:
            yield current, [None] * len(current)
        else:
            yield current, await derivation.columns(current, started)
        current, started = following, following_started


def _name(tp: TopicPartition | tuple[str, int]) -> str:
    topic, partition = (tp.topic, tp.partition) if isinstance(tp, TopicPartition) else tp
    return f"{topic}/{partition}"


@dataclass
class Verifier:
    """One verification run over ``store``: ``await Verifier(...).run()``."""

    store: AuditStore
    keys: TrustStore
    chain_id: str
    origin: str
    kafka: KafkaSettings | None
    topics: tuple[str, ...] = AUDITED_TOPICS
    result: Verification = field(default_factory=Verification)
    on_log: dict[int, tuple[TreeCheckpoint, str]] = field(default_factory=dict)
    """The chain's checkpoints found on the log, by size, with where they were found."""
    progress: Progress | None = None
    """Told, after each chunk of entries, how many were checked of how many."""
    writers: Mapping[str, Collection[str]] = field(default_factory=lambda: TOPIC_WRITERS)
    """Whose keys may vouch for each topic's records (``gate.TOPIC_WRITERS``)."""
    derive_apart_from: int = APART_FROM
    """Entries from which the query columns are derived in a process of their own."""
    _refused: dict[tuple[str, int, int], RefusedRecord] = field(default_factory=dict)
    _refused_seen: set[tuple[str, int, int]] = field(default_factory=set)
    _tree: Frontier = field(default_factory=Frontier)
    _roots: dict[int, bytes] = field(default_factory=dict)
    """The recomputed tree's root at each size a checkpoint names."""

    async def run(self) -> Verification:
        self.result.against_log = self.kafka is not None
        snapshot = await self.store.snapshot()
        rows = await self.store.checkpoints()
        self._refused = {(r.topic, r.partition, r.offset): r for r in await self.store.refused_records()}
        self.result.forgeries = [_named(refusal) for refusal in self._refused.values()]
        self._roots = dict.fromkeys({row.sequence for row in rows} | await self._published_sizes(), b"")
        self.result.covered = {
            "sequence": snapshot.head.sequence,
            "offsets": {_name(tp): n for tp, n in sorted(snapshot.next_offsets.items())},
        }
        if self.kafka is None:
            walked = await self._walk(snapshot, rows, None)
        else:
            walked = await self._against_log(snapshot, rows, self.kafka)
        if walked:
            await self._tree_holds(snapshot.head.sequence)
        newest = await self.store.stored_head()
        for row in rows:
            if row.sequence > snapshot.head.sequence and row.sequence > newest:
                self.result.fail(row.sequence, "a checkpoint covers entries that are not in the store")
        self.result.lag["entries"] = max(0, newest - snapshot.head.sequence)
        return self.result

    async def _published_sizes(self) -> set[int]:
        """The sizes the chain's published checkpoints in the store name (the walk records the
        recomputed tree's root at each)."""
        sizes = set()
        where = EntryFilter(event_types=(TreeCheckpoint.event_type,))
        async for chunk in self.store.stream(StoredEntry, where):
            for row in chunk:
                if row.subject == self.chain_id:
                    try:
                        sizes.add(TreeCheckpoint.model_validate_json(row.value or b"").size)
                    except ValueError:
                        continue
        return sizes

    async def _tree_holds(self, size: int) -> None:
        """The stored tree is the one the entries make."""
        root = self._tree.root()
        self.result.tree = {"size": size, "root": base64.b64encode(root).decode()}
        if await self.store.root_at(size) != root:
            self.result.fail(size, "the stored Merkle tree is not the one the entries make")

    async def _against_log(self, snapshot: Snapshot, rows: list[Any], kafka: KafkaSettings) -> bool:
        async with open_consumer(kafka, client_id="audit-verify", fetch_bytes=FETCH_BYTES) as consumer:
            every = await partitions_of(consumer, self.topics)
            ends = await consumer.end_offsets(every)
            limits = {tp: snapshot.next_offsets.get((tp.topic, tp.partition), 0) for tp in every}
            self.result.lag["records"] = {_name(tp): max(0, ends[tp] - limits[tp]) for tp in every}
            for tp in every:
                if limits[tp] > ends[tp]:
                    self.result.fail(
                        None,
                        f"the store holds {_name(tp)} up to offset {limits[tp] - 1}, but the log "
                        f"ends at {ends[tp] - 1}",
                    )
            reader = LogReader(consumer, limits, ProofGate(self.keys, self.writers))
            await reader.start()
            walked = await self._walk(snapshot, rows, reader)
            if walked:
                await self._nothing_left_behind(reader, limits)
        if AUDIT in self.topics:
            await self._checkpoints_after(kafka, snapshot, ends, len([tp for tp in every if tp.topic == AUDIT]))
        if walked:
            # Rows are written before they are published: read after the log, they include a
            # row for everything found on it; read before, every row marked published is on it.
            rows_now = await self.store.checkpoints()
            self._rows_match_the_log(snapshot, rows, rows_now, await self.store.stored_head())
        return walked

    async def _walk(self, snapshot: Snapshot, rows: list[Any], reader: LogReader | None) -> bool:
        """Every entry of the snapshot in order; False at the first one that is not what it
        should be (what follows it cannot be judged)."""
        by_sequence = {row.sequence: row for row in rows if row.sequence <= snapshot.head.sequence}
        previous, expected = GENESIS, 1
        stored = self.store.stream(StoredEntry, EntryFilter(through_sequence=snapshot.head.sequence), chunk=5000)
        derivation = Derivation(snapshot.head.sequence if reader is not None else 0, self.derive_apart_from)
        async with derivation, contextlib.aclosing(_with_columns(stored, derivation, reader is not None)) as chunks:
            async for chunk, columns in chunks:
                for row, derived in zip(chunk, columns, strict=True):
                    if row.seq != expected:
                        self.result.fail(expected, f"entry {expected} is missing (the next stored entry is {row.seq})")
                        return False
                    record = log_record(row, with_headers=False)
                    if row.prev_hash != previous:
                        self.result.fail(row.seq, "prev_hash does not match the previous entry's hash")
                        return False
                    leaf = canonical(record, row.headers)
                    digest = chain_hash(previous, leaf)
                    if digest != row.hash:
                        self.result.fail(row.seq, "stored content does not match its hash (the entry was edited)")
                        return False
                    self._tree = self._tree.append(leaf)
                    if row.seq in self._roots:
                        self._roots[row.seq] = self._tree.root()
                    if (stored_row := by_sequence.get(row.seq)) is not None and not self._row_holds(stored_row, digest):
                        return False
                    if reader is not None:
                        if await self._matches_log(reader, row, record) is None:
                            return False
                        if not self._derived_columns_hold(row, derived):
                            return False
                    if row.event_type == CHECKPOINT_TYPE and row.subject == self.chain_id:
                        await self._published_checkpoint(row)
                    previous, expected = digest, expected + 1
                    self.result.entries += 1
                if self.progress is not None:
                    self.progress(self.result.entries, snapshot.head.sequence)
        return True

    def _row_holds(self, stored: Any, digest: str) -> bool:
        """A checkpoint row: the chain's head it names, and its note signed by a trusted audit
        key over the tree as the entries make it."""
        self.result.checkpoints += 1
        if stored.head_hash != digest:
            self.result.fail(stored.sequence, "the chain differs from the signed checkpoint at this size")
            return False
        if stored.note is None:
            return True  # a checkpoint of the chain alone, signed before the tree: its head is checked
        checked = evidence.note_refusal(
            stored.note, origin=self.origin, trust=self.keys, at=parse_time(stored.signed_at).timestamp()
        )
        if isinstance(checked, str):
            self.result.fail(stored.sequence, f"the checkpoint's note does not hold: {checked}", key_id=stored.key_id)
            return False
        if (checked.size, checked.root) != (stored.sequence, self._tree.root()):
            self.result.fail(stored.sequence, "the signed checkpoint is not the tree the entries make at this size")
            return False
        return True

    def _derived_columns_hold(self, row: Any, derived: tuple[Any, ...] | None) -> bool:
        """The query columns (actor, type, task...) still say what the record says. Only the full
        verification decodes every entry for this (``derived``, in ``DERIVED`` order), from the
        stored copy, which ``_matches_log`` has just found equal to the log's; the chain alone
        covers the record's bytes."""
        assert derived is not None, "a walk against the log derives every entry's columns"
        if _stored_derived(row) == derived:
            return True
        differs = [name for name, value in zip(DERIVED, derived, strict=True) if getattr(row, name) != value]
        self.result.fail(row.seq, "columns derived from the record were changed", fields=differs)
        return False

    async def _matches_log(self, reader: LogReader, row: Any, record: LogRecord) -> LogRecord | None:
        """The log's record at the entry's position, if the entry holds exactly its bytes and its
        writer's proof holds. Compared as bytes, field by field: the stored headers are already
        in their canonical form. Refused records before it must be the ones the store keeps apart."""
        tp = TopicPartition(record.topic, record.partition)
        where = f"{record.topic}/{record.partition}"
        found = await reader.next(tp)
        while found is not None and not found[1].ok and found[0].offset != record.offset:
            self._kept_apart(found[0], found[1])
            found = await reader.next(tp)
        if found is None:
            self.result.fail(row.seq, f"entry claims {where}@{record.offset}, which is not on the log")
            return None
        on_log, verdict = found
        if on_log.offset != record.offset:
            self.result.fail(
                row.seq,
                f"the store and the log disagree on {where}: the log's next record is "
                f"@{on_log.offset}, the entry claims @{record.offset} (an entry was removed "
                "or inserted)",
            )
            return None
        if not verdict.ok:
            self.result.fail(
                row.seq, f"the entry's record at {where}@{record.offset} is not its writer's: {verdict.refusal}"
            )
            return None
        logged = as_log_record(on_log)
        differs = [name for name in ("timestamp", "key", "value") if getattr(logged, name) != getattr(row, name)]
        if headers_json(logged.headers) != row.headers:
            differs.append("headers")
        if differs:
            self.result.fail(row.seq, f"entry differs from {where}@{record.offset} on the log", fields=differs)
            return None
        return logged

    def _kept_apart(self, on_log: ConsumerRecord, verdict: Verdict) -> None:
        """A record of the log refused for its writer's proof: the store must keep it apart, as it is."""
        where = (on_log.topic, on_log.partition, on_log.offset)
        kept = self._refused.get(where)
        self._refused_seen.add(where)
        name = f"{on_log.topic}/{on_log.partition}@{on_log.offset}"
        if kept is None:
            self.result.fail(
                None, f"{name} is not its writer's ({verdict.refusal}) and the store does not keep it apart"
            )
            return
        logged = as_log_record(on_log)
        if (logged.timestamp, logged.key, logged.value, headers_json(logged.headers)) != (
            kept.timestamp,
            kept.key,
            kept.value,
            kept.headers,
        ):
            self.result.fail(None, f"the record kept apart for {name} differs from the log's")

    async def _published_checkpoint(self, row: Any) -> None:
        """A checkpoint of this chain that travelled through the log and back: evidence (its
        writer's proof held, its note is signed by a trusted key) of the tree at the size it names."""
        where = f"{row.topic}/{row.partition}@{row.offset}"
        judged = evidence.judge(
            row.key,
            row.value,
            decode_headers(row.headers),
            Verdict(writer=evidence.OWNER),
            chain_id=self.chain_id,
            origin=self.origin,
            trust=self.keys,
            at=row.timestamp / 1000,
        )
        if not isinstance(judged, evidence.Evidence):
            reason = judged.reason if isinstance(judged, evidence.NotEvidence) else "not a checkpoint"
            self.result.fail(row.seq, f"the checkpoint published at {where} does not hold: {reason}")
            return
        self.on_log[judged.size] = (judged.checkpoint, where)
        if judged.size >= row.seq:
            self.result.fail(row.seq, f"the checkpoint at {where} names entry {judged.size}, which it cannot have seen")
            return
        await self._check_published(judged, where)

    async def _check_published(self, found: evidence.Evidence, where: str) -> None:
        self.result.checkpoints_on_log += 1
        root = self._roots.get(found.size) or await self.store.root_at(found.size)
        if root != found.root or await self.store.hash_at(found.size) != found.checkpoint.head_hash:
            self.result.fail(found.size, f"the checkpoint published at {where} does not match the trail at this size")

    async def _nothing_left_behind(self, reader: LogReader, limits: dict[TopicPartition, int]) -> None:
        """Completeness: below the snapshot's offsets, every record of the log is in the store,
        as an entry or kept apart; and every record kept apart is on the log."""
        for tp in sorted(limits, key=_name):
            missing: list[int] = []
            while (found := await reader.next(tp)) is not None:
                if found[1].ok:
                    missing.append(found[0].offset)
                else:
                    self._kept_apart(*found)
            if missing:
                self.result.fail(
                    None,
                    f"{len(missing)} records of {_name(tp)} (offsets {missing[0]}..{missing[-1]}) are on "
                    "the log but missing from the store",
                    partition=_name(tp),
                    missing={"from_offset": missing[0], "to_offset": missing[-1], "count": len(missing)},
                )
        for where in sorted(set(self._refused) - self._refused_seen):
            topic, partition, offset = where
            if offset < limits.get(TopicPartition(topic, partition), 0):
                self.result.fail(
                    None, f"the store keeps {topic}/{partition}@{offset} apart, but the log does not hold it"
                )

    async def _checkpoints_after(
        self, kafka: KafkaSettings, snapshot: Snapshot, ends: dict[TopicPartition, int], partitions: int
    ) -> None:
        """The chain's checkpoints on the log that the snapshot has not ingested yet: none may
        name entries the store does not have."""
        tp = checkpoint_partition(self.chain_id, partitions)
        start = snapshot.next_offsets.get((tp.topic, tp.partition), 0)
        async with open_consumer(kafka, client_id="audit-verify") as consumer:
            tail = await read_range(consumer, tp, start, ends[tp])
        head = await self.store.stored_head()  # once, after the tail: what the store holds by now
        for record, verdict in ProofGate(self.keys).admit(tail, complete=True, topic=tp.topic, partition=tp.partition):
            where = f"{tp.topic}/{tp.partition}@{record.offset}"
            judged = evidence.judge(
                record.key,
                record.value,
                record.headers,
                verdict,
                chain_id=self.chain_id,
                origin=self.origin,
                trust=self.keys,
                at=record.timestamp / 1000,
            )
            if isinstance(judged, evidence.NotEvidence):
                self.result.untrusted_checkpoints.append(f"{where} is not evidence: {judged.reason}")
            if not isinstance(judged, evidence.Evidence):
                continue
            self.on_log[judged.size] = (judged.checkpoint, where)
            if judged.size > head:
                self.result.fail(
                    head + 1,
                    f"the checkpoint published at {where} covers entries up to {judged.size}, but the store "
                    f"ends at {head}: entries {head + 1}..{judged.size} are missing (rolled back or truncated)",
                    missing={"from_sequence": head + 1, "to_sequence": judged.size},
                )
            elif judged.size <= snapshot.head.sequence:
                await self._check_published(judged, where)

    def _rows_match_the_log(self, snapshot: Snapshot, rows: list[Any], rows_now: list[Any], newest: int) -> None:
        """The store's checkpoint rows and the copies on the log: neither may lack the other."""
        by_sequence = {row.sequence: row for row in rows_now}
        for sequence, (checkpoint, where) in sorted(self.on_log.items()):
            if sequence not in by_sequence and sequence <= newest:
                self.result.fail(
                    sequence,
                    f"the checkpoint published at {where} (signed "
                    f"{checkpoint.signed_at.isoformat()}) has no row in the store",
                )
        for row in rows:
            if row.published and row.sequence <= snapshot.head.sequence and row.sequence not in self.on_log:
                self.result.fail(row.sequence, "a checkpoint row marked as published is not on the log")


def _named(refusal: RefusedRecord) -> dict[str, Any]:
    return {
        "topic": refusal.topic,
        "partition": refusal.partition,
        "offset": refusal.offset,
        "reason": refusal.reason,
        "detected_at": refusal.detected_at,
    }


async def verify(
    store: AuditStore,
    keys: TrustStore,
    chain_id: str,
    origin: str,
    kafka: KafkaSettings | None,
    topics: tuple[str, ...] = AUDITED_TOPICS,
    progress: Progress | None = None,
    writers: Mapping[str, Collection[str]] = TOPIC_WRITERS,
    derive_apart_from: int = APART_FROM,
) -> Verification:
    """Verifies the chain, the tree and their checkpoints; with ``kafka``, also against the log."""
    return await Verifier(
        store,
        keys,
        chain_id,
        origin,
        kafka,
        topics,
        progress=progress,
        writers=writers,
        derive_apart_from=derive_apart_from,
    ).run()
