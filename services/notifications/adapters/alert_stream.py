"""The alerts a live stream sends, read from ``policy.alerts`` for each listener: lossless by
construction. A position is the next offset of every partition; the stream's event id is that
position, so resuming after any id reads every later alert exactly once, and a slow listener
only reads more slowly."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from shared.contract import catalog as c
from shared.contract.codec import decode_record
from shared.contract.envelope import AnyEvent, CloudEvent
from shared.contract.topics import ALERTS
from shared.kafka.consumer import offsets_of, open_consumer, partitions_of, read_through
from shared.provenance.gate import ProofGate
from shared.settings import KafkaSettings

_POSITION = re.compile(r"(\d{1,4})-(\d{1,18})")
MAX_PARTITIONS = 1024


@dataclass(frozen=True)
class StreamPosition:
    """Per partition of ``policy.alerts``, the offset of the next alert to send."""

    offsets: tuple[tuple[int, int], ...]

    def encode(self) -> str:
        return ".".join(f"{partition}-{offset}" for partition, offset in self.offsets)

    @classmethod
    def parse(cls, text: str) -> StreamPosition:
        """ValueError unless ``text`` is a position this service issued."""
        parts = text.split(".") if text else []
        matches = [_POSITION.fullmatch(part) for part in parts]
        if not parts or len(parts) > MAX_PARTITIONS or not all(matches):
            raise ValueError("not an event id of this stream")
        offsets = {int(m.group(1)): int(m.group(2)) for m in matches if m is not None}
        if len(offsets) != len(parts):
            raise ValueError("not an event id of this stream")
        return cls(tuple(sorted(offsets.items())))

    def next_offset(self, partition: int) -> int:
        """The offset of the next alert to send on ``partition`` (0: none sent yet)."""
        return next((offset for p, offset in self.offsets if p == partition), 0)

    def after(self, partition: int, offset: int) -> StreamPosition:
        return StreamPosition(tuple(sorted({**dict(self.offsets), partition: offset + 1}.items())))


StreamItem = tuple[AnyEvent | None, StreamPosition]
"""An alert (None: a quiet second) and the stream's position after it."""


async def alerts_from(
    kafka: KafkaSettings, proofs: ProofGate, position: StreamPosition | None, *, from_end: bool = False
) -> AsyncGenerator[StreamItem, None]:
    """Deadline alerts from ``position`` on (from the beginning, or the end, without one), each
    with the position after it; ``(None, position)`` whenever a second passes without one. Only
    alerts whose writer's proof holds are sent; a refused record is stepped over."""
    async with open_consumer(kafka, client_id="alert-stream") as consumer:
        partitions = await partitions_of(consumer, [ALERTS])
        consumer.assign(partitions)
        starts = dict(position.offsets) if position else {}
        if from_end and position is None:
            ends = await offsets_of(consumer, partitions)
            starts = {tp.partition: ends[tp] for tp in partitions}
        await consumer.seek_to_beginning(*(tp for tp in partitions if tp.partition not in starts))
        for tp in partitions:
            if tp.partition in starts:
                consumer.seek(tp, starts[tp.partition])
        current = StreamPosition(
            tuple(sorted({tp.partition: starts.get(tp.partition, 0) for tp in partitions}.items()))
        )
        while True:
            batch = await consumer.getmany(timeout_ms=1000, max_records=200)
            if not batch:
                yield None, current
            for tp in partitions:
                judged = proofs.admit(
                    batch.get(tp, []), complete=await read_through(consumer, tp), topic=tp.topic, partition=tp.partition
                )
                for record, verdict in judged:
                    current = current.after(tp.partition, record.offset)
                    event = decode_record(record) if verdict.ok else None
                    if isinstance(event, CloudEvent) and isinstance(event.data, c.NOTICES):
                        yield event, current
