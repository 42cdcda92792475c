"""The trail's entries compared with the Kafka log, partition by partition: each entry holds
exactly its record's bytes and its writer's proof holds, its query columns say what the record
says, and nothing on the log below the snapshot is left out. The single walk of
``verification`` compares entry by entry; on a long trail, processes of their own each compare
some partitions (``compare_partitions``) while the walk checks the chain."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from services.audit.adapters.chaining import DERIVED, log_record
from services.audit.adapters.derivation import derived_columns_of
from services.audit.adapters.log import FETCH_BYTES, LogReader, as_log_record
from services.audit.adapters.schema import RefusedRecord, entries
from services.audit.adapters.store import AuditStore
from services.audit.application.findings import Verification
from services.audit.domain.chain import LogRecord, headers_json
from shared.kafka.consumer import open_consumer
from shared.process import run
from shared.provenance.gate import ProofGate, Verdict
from shared.provenance.keys import TrustStore
from shared.settings import KafkaSettings

Position = tuple[str, int, int]
"""A record's topic, partition and offset."""

# By position: a row's attribute lookup by name costs more than the comparison itself.
_stored_derived = itemgetter(*(entries.c.keys().index(name) for name in DERIVED))


def partition_name(tp: TopicPartition | tuple[str, int]) -> str:
    topic, partition = (tp.topic, tp.partition) if isinstance(tp, TopicPartition) else tp
    return f"{topic}/{partition}"


@dataclass
class LogComparison:
    """Entries against the log ``reader`` reads; what differs goes to ``result``."""

    result: Verification
    reader: LogReader
    refused: Mapping[Position, RefusedRecord]
    """The records the store keeps apart, refused for their writer's proof."""
    refused_seen: set[Position] = field(default_factory=set)

    async def matches_log(self, row: Any, record: LogRecord) -> LogRecord | None:
        """The log's record at the entry's position, if the entry holds exactly its bytes and its
        writer's proof holds. Compared as bytes, field by field: the stored headers are already
        in their canonical form. Refused records before it must be the ones the store keeps apart."""
        tp = TopicPartition(record.topic, record.partition)
        found = await self.reader.next(tp)
        while found is not None and not found[1].ok and found[0].offset != record.offset:
            self.kept_apart(found[0], found[1])
            found = await self.reader.next(tp)
        if found is not None and found[1].ok and found[0].offset == record.offset:
            logged = as_log_record(found[0])
            if (logged.timestamp, logged.key, logged.value) == (row.timestamp, row.key, row.value) and headers_json(
                logged.headers
            ) == row.headers:
                return logged
        self._differs(row, record, found)
        return None

    def _differs(self, row: Any, record: LogRecord, found: tuple[ConsumerRecord, Verdict] | None) -> None:
        """What ``matches_log`` found to differ between the entry and the log's ``found``."""
        where = f"{record.topic}/{record.partition}"
        if found is None:
            self.result.fail(row.seq, f"entry claims {where}@{record.offset}, which is not on the log")
            return
        on_log, verdict = found
        if on_log.offset != record.offset:
            self.result.fail(
                row.seq,
                f"the store and the log disagree on {where}: the log's next record is "
                f"@{on_log.offset}, the entry claims @{record.offset} (an entry was removed "
                "or inserted)",
            )
            return
        if not verdict.ok:
            self.result.fail(
                row.seq, f"the entry's record at {where}@{record.offset} is not its writer's: {verdict.refusal}"
            )
            return
        logged = as_log_record(on_log)
        differs = [name for name in ("timestamp", "key", "value") if getattr(logged, name) != getattr(row, name)]
        if headers_json(logged.headers) != row.headers:
            differs.append("headers")
        self.result.fail(row.seq, f"entry differs from {where}@{record.offset} on the log", fields=differs)

    def derived_columns_hold(self, row: Any, derived: tuple[Any, ...] | None) -> bool:
        """The query columns (actor, type, task...) still say what the record says. Only the full
        verification decodes every entry for this (``derived``, in ``DERIVED`` order), from the
        stored copy, which ``matches_log`` has just found equal to the log's; the chain alone
        covers the record's bytes."""
        assert derived is not None, "a walk against the log derives every entry's columns"
        if _stored_derived(row) == derived:
            return True
        differs = [name for name, value in zip(DERIVED, derived, strict=True) if getattr(row, name) != value]
        self.result.fail(row.seq, "columns derived from the record were changed", fields=differs)
        return False

    def kept_apart(self, on_log: ConsumerRecord, verdict: Verdict) -> None:
        """A record of the log refused for its writer's proof: the store must keep it apart, as it is."""
        where = (on_log.topic, on_log.partition, on_log.offset)
        kept = self.refused.get(where)
        self.refused_seen.add(where)
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

    async def nothing_left_behind(self, limits: Mapping[TopicPartition, int]) -> None:
        """Completeness: below the snapshot's offsets, every record of the log is in the store,
        as an entry or kept apart; and every record kept apart is on the log."""
        for tp in sorted(limits, key=partition_name):
            missing: list[int] = []
            while (found := await self.reader.next(tp)) is not None:
                if found[1].ok:
                    missing.append(found[0].offset)
                else:
                    self.kept_apart(*found)
            if missing:
                self.result.fail(
                    None,
                    f"{len(missing)} records of {partition_name(tp)} (offsets {missing[0]}..{missing[-1]}) are "
                    "on the log but missing from the store",
                    partition=partition_name(tp),
                    missing={"from_offset": missing[0], "to_offset": missing[-1], "count": len(missing)},
                )
        for where in sorted(set(self.refused) - self.refused_seen):
            topic, partition, offset = where
            if offset < limits.get(TopicPartition(topic, partition), 0):
                self.result.fail(
                    None, f"the store keeps {topic}/{partition}@{offset} apart, but the log does not hold it"
                )


@dataclass(frozen=True)
class PartitionsCompared:
    """What a process comparing some partitions found: how many entries held, and whether
    anything differed (the single walk then names what, in the trail's order)."""

    entries: int
    intact: bool


@dataclass(frozen=True)
class PartitionsToCompare:
    """What a process comparing some partitions is handed: where the store is, the log and
    whose proofs it trusts, each partition's limit (the snapshot's next offset), the last entry
    of the snapshot, and the records the store keeps apart."""

    store_url: str
    kafka: KafkaSettings
    keys: TrustStore
    writers: Mapping[str, Collection[str]]
    limits: Mapping[tuple[str, int], int]
    through_sequence: int
    refused: Collection[RefusedRecord]
    slot: int = 0
    """Where in the counts shared with the walk (``count_into``) this job tells how many
    entries it has compared."""


_compared_counts: Any = None
"""In a comparing process, the counts shared with the walk, one a job (``shared_counts``)."""


def count_into(counts: Any) -> None:
    """A comparing process's initializer: it tells ``counts`` how far each job has got."""
    global _compared_counts  # a process's initializer is how shared memory reaches it
    _compared_counts = counts


def _tell_compared(slot: int, entries: int) -> None:
    if _compared_counts is not None:
        _compared_counts[slot] = entries


def compare_partitions(job: PartitionsToCompare) -> PartitionsCompared:
    """In a process of its own: the entries of these partitions against the log."""
    compared: PartitionsCompared = run(_compare_partitions(job))
    return compared


async def _compare_partitions(job: PartitionsToCompare) -> PartitionsCompared:
    result = Verification()
    store = AuditStore(job.store_url)
    compared = 0
    try:
        async with open_consumer(job.kafka, client_id="audit-verify", fetch_bytes=FETCH_BYTES) as consumer:
            ends = {TopicPartition(topic, partition): n for (topic, partition), n in job.limits.items()}
            reader = LogReader(consumer, ends, ProofGate(job.keys, job.writers))
            await reader.start()
            kept = {(r.topic, r.partition, r.offset): r for r in job.refused if (r.topic, r.partition) in job.limits}
            comparison = LogComparison(result, reader, kept)
            for tp in sorted(ends, key=partition_name):
                held = await _partition_holds(store, comparison, tp, job.through_sequence, job.slot, compared)
                if held is None:
                    return PartitionsCompared(compared, intact=False)
                compared += held
            await comparison.nothing_left_behind(ends)
    finally:
        await store.close()
    return PartitionsCompared(compared, intact=result.ok)


async def _partition_holds(
    store: AuditStore, comparison: LogComparison, tp: TopicPartition, through_sequence: int, slot: int, before: int
) -> int | None:
    """How many entries of ``tp`` hold against the log; None at the first that does not. Read in
    offset order, their sequence numbers must rise: then it is the walk's order too. After each
    chunk, the job's count (``before`` this partition, and these) is told to the walk."""
    held, last_sequence = 0, 0
    async for chunk in store.partition_entries(tp.topic, tp.partition, through_sequence=through_sequence):
        for row in chunk:
            if row.seq <= last_sequence:
                comparison.result.fail(row.seq, f"entries of {partition_name(tp)} are out of order")
                return None
            logged = await comparison.matches_log(row, log_record(row, with_headers=False))
            # Derived from the log's copy, just found equal to the stored one: its headers are
            # already bytes, not the stored base64.
            if logged is None or not comparison.derived_columns_hold(row, derived_columns_of(logged)):
                return None
            held, last_sequence = held + 1, row.seq
        _tell_compared(slot, before + held)
    return held
