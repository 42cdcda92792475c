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

import asyncio
import base64
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

from services.audit.adapters.chaining import decode_headers, log_record
from services.audit.adapters.derivation import APART_FROM, Derivation
from services.audit.adapters.log import AUDITED_TOPICS, FETCH_BYTES, LogReader, checkpoint_partition, read_range
from services.audit.adapters.schema import RefusedRecord, StoredEntry
from services.audit.adapters.store import AuditStore, EntryFilter, Snapshot
from services.audit.application.checkpoints import CHECKPOINT_TYPE, parse_time
from services.audit.application.findings import Verification
from services.audit.application.log_comparison import (
    LogComparison,
    PartitionsToCompare,
    Position,
    compare_partitions,
    count_into,
    partition_name,
)
from services.audit.domain import evidence
from services.audit.domain.chain import GENESIS, canonical, chain_hash
from shared.contract.catalog import TreeCheckpoint
from shared.contract.topics import AUDIT
from shared.kafka.consumer import offsets_of, open_consumer, partitions_of
from shared.logging import get_logger
from shared.process import cores, processes_apart, shared_counts
from shared.provenance.gate import TOPIC_WRITERS, ProofGate, Verdict
from shared.provenance.keys import TrustStore
from shared.settings import KafkaSettings
from shared.transparency.merkle import Frontier

Progress = Callable[[int, int], None]
COMPARE_APART_FROM = 100_000
"""Entries from which the log is compared in processes of their own: below, starting them (the
first time, about a second for their server to import the code) costs more than it saves."""
PROGRESS_EVERY = 0.5
"""Seconds between reports of progress while the comparisons outlast the walk."""
log = get_logger("audit.verification")


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
    compare_apart_from: int | None = COMPARE_APART_FROM
    """Entries from which the log is compared in processes of their own, a few partitions each,
    while this one walks the chain; None: never."""
    _refused: dict[Position, RefusedRecord] = field(default_factory=dict)
    _tree: Frontier = field(default_factory=Frontier)
    _roots: dict[int, bytes] = field(default_factory=dict)
    """The recomputed tree's root at each size a checkpoint names."""

    async def run(self, snapshot: Snapshot | None = None) -> Verification:
        """Verifies the snapshot of the store taken now (or ``snapshot``)."""
        self.result.against_log = self.kafka is not None
        snapshot = snapshot or await self.store.snapshot()
        rows = await self.store.checkpoints()
        self._refused = {(r.topic, r.partition, r.offset): r for r in await self.store.refused_records()}
        self.result.forgeries = [_named(refusal) for refusal in self._refused.values()]
        self._roots = dict.fromkeys({row.sequence for row in rows} | await self._published_sizes(), b"")
        self.result.covered = {
            "sequence": snapshot.head.sequence,
            "offsets": {partition_name(tp): n for tp, n in sorted(snapshot.next_offsets.items())},
        }
        if self.kafka is None:
            walked = await self._walk(snapshot, rows, None)
        else:
            compared = await self._against_log(snapshot, rows, self.kafka)
            if compared is None:
                return await self._in_one_walk(snapshot)
            walked = compared
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

    async def _against_log(self, snapshot: Snapshot, rows: list[Any], kafka: KafkaSettings) -> bool | None:
        """Whether the walk went through every entry; None when processes comparing partitions
        apart found something amiss (the one walk then finds it, in the trail's order)."""
        async with open_consumer(kafka, client_id="audit-verify", fetch_bytes=FETCH_BYTES) as consumer:
            every = await partitions_of(consumer, self.topics)
            ends = await offsets_of(consumer, every)
            limits = {tp: snapshot.next_offsets.get((tp.topic, tp.partition), 0) for tp in every}
            self.result.lag["records"] = {partition_name(tp): max(0, ends[tp] - limits[tp]) for tp in every}
            for tp in every:
                if limits[tp] > ends[tp]:
                    self.result.fail(
                        None,
                        f"the store holds {partition_name(tp)} up to offset {limits[tp] - 1}, but the log "
                        f"ends at {ends[tp] - 1}",
                    )
            if self._compares_apart(snapshot, limits):
                if not await self._walk_beside_comparisons(snapshot, rows, kafka, limits):
                    return None
                walked = True
            else:
                comparison = LogComparison(
                    self.result, LogReader(consumer, limits, ProofGate(self.keys, self.writers)), self._refused
                )
                await comparison.reader.start()
                walked = await self._walk(snapshot, rows, comparison)
                if walked:
                    await comparison.nothing_left_behind(limits)
        if AUDIT in self.topics:
            await self._checkpoints_after(kafka, snapshot, ends, len([tp for tp in every if tp.topic == AUDIT]))
        if walked:
            # Rows are written before they are published: read after the log, they include a
            # row for everything found on it; read before, every row marked published is on it.
            rows_now = await self.store.checkpoints()
            self._rows_match_the_log(snapshot, rows, rows_now, await self.store.stored_head())
        return walked

    def _compares_apart(self, snapshot: Snapshot, limits: Mapping[TopicPartition, int]) -> bool:
        # Another process cannot open an in-memory database; and on a store already found
        # wanting, the one walk names every finding in order.
        return (
            self.compare_apart_from is not None
            and snapshot.head.sequence >= self.compare_apart_from
            and len(limits) > 1
            and self.result.ok
            and ":memory:" not in self.store.url
        )

    async def _walk_beside_comparisons(
        self, snapshot: Snapshot, rows: list[Any], kafka: KafkaSettings, limits: Mapping[TopicPartition, int]
    ) -> bool:
        """The chain walked here while processes of their own compare the entries with the log,
        a few partitions each; True when every check held and they compared every entry. An
        entry counts as checked once both have: the walk ends well before the comparisons."""
        groups = _shared_out(limits, cores() + 1)
        compared_so_far = shared_counts(len(groups))
        loop = asyncio.get_running_loop()
        refused = list(self._refused.values())

        def checked(walked: int, of: int) -> None:
            if self.progress is not None:
                self.progress(min(walked, sum(compared_so_far)), of)

        with processes_apart(len(groups), (__name__,), count_into, (compared_so_far,)) as pool:
            jobs = [
                PartitionsToCompare(
                    self.store.url, kafka, self.keys, self.writers, group, snapshot.head.sequence, refused, slot
                )
                for slot, group in enumerate(groups)
            ]
            comparing = asyncio.gather(*(loop.run_in_executor(pool, compare_partitions, job) for job in jobs))
            try:
                if not await self._walk(snapshot, rows, None, checked):
                    return False
                # Told at least once more after they end: their last counts are their totals.
                ended = False
                while not ended:
                    ended = bool((await asyncio.wait({comparing}, timeout=PROGRESS_EVERY))[0])
                    checked(self.result.entries, snapshot.head.sequence)
                compared = await comparing
            except Exception as error:
                log.warning("comparing partitions apart failed; walking in one", error=repr(error))
                return False
            finally:
                comparing.cancel()
        return all(c.intact for c in compared) and sum(c.entries for c in compared) == snapshot.head.sequence

    async def _in_one_walk(self, snapshot: Snapshot) -> Verification:
        """The same snapshot verified again by the one walk, which compares the log entry by entry."""
        again = Verifier(
            self.store,
            self.keys,
            self.chain_id,
            self.origin,
            self.kafka,
            self.topics,
            progress=self.progress,
            writers=self.writers,
            derive_apart_from=self.derive_apart_from,
            compare_apart_from=None,
        )
        return await again.run(snapshot)

    async def _walk(
        self, snapshot: Snapshot, rows: list[Any], comparison: LogComparison | None, checked: Progress | None = None
    ) -> bool:
        """Every entry of the snapshot in order; False at the first one that is not what it
        should be (what follows it cannot be judged). After each chunk, ``checked`` (else the
        run's progress) is told how many entries it walked."""
        checked = checked or self.progress
        by_sequence = {row.sequence: row for row in rows if row.sequence <= snapshot.head.sequence}
        previous, expected = GENESIS, 1
        stored = self.store.stream(StoredEntry, EntryFilter(through_sequence=snapshot.head.sequence), chunk=5000)
        derive = comparison is not None
        derivation = Derivation(snapshot.head.sequence if derive else 0, self.derive_apart_from)
        async with derivation, contextlib.aclosing(_with_columns(stored, derivation, derive)) as chunks:
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
                    if comparison is not None:
                        if await comparison.matches_log(row, record) is None:
                            return False
                        if not comparison.derived_columns_hold(row, derived):
                            return False
                    if row.event_type == CHECKPOINT_TYPE and row.subject == self.chain_id:
                        await self._published_checkpoint(row)
                    previous, expected = digest, expected + 1
                    self.result.entries += 1
                if checked is not None:
                    checked(self.result.entries, snapshot.head.sequence)
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


def _shared_out(limits: Mapping[TopicPartition, int], processes: int) -> list[dict[tuple[str, int], int]]:
    """The partitions shared among ``processes``, the busiest first to the least loaded (a
    partition's next offset stands for its entries)."""
    groups: list[dict[tuple[str, int], int]] = [{} for _ in range(min(processes, len(limits)))]
    loads = [0] * len(groups)
    for tp, limit in sorted(limits.items(), key=lambda item: -item[1]):
        least = loads.index(min(loads))
        groups[least][(tp.topic, tp.partition)] = limit
        loads[least] += limit
    return [group for group in groups if group]


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
    compare_apart_from: int | None = COMPARE_APART_FROM,
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
        compare_apart_from=compare_apart_from,
    ).run()
