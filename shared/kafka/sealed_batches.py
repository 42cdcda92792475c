"""Records appended outside a transaction, sealed and sent a record batch at a time.

The records a writer appends in one turn of the event loop are gathered per partition into
record batches that it sends whole (aiokafka's ``send_batch``). The broker appends a batch whole
or not at all and replicates it whole, so one signature, on its last record, vouches for every
record of it, as the last record of a transaction does for the transaction's: a signature per
batch, not per record (Ed25519's 27-60 µs were the largest part of the notifications service's
work per alert, `docs/performance.md`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import DefaultRecordBatchBuilder
from aiokafka.structs import RecordMetadata

from shared.provenance.seals import PROOF_HEADER, Sealer

Headers = Sequence[tuple[str, bytes | None]]

WAITING_AT_MOST = 10_000
"""Records waiting to be sealed before an appender waits for room (while the broker is away, as
aiokafka's own ``send`` waits while its queue is full)."""
_PROOF_AT_MOST = (PROOF_HEADER, bytes(400))
"""A proof as long as a reader accepts one (``Proof.parse``): a record's size is bounded with it."""


def size_at_most(key: bytes | None, value: bytes | None, headers: Headers) -> int:
    """The most bytes the record takes in a record batch once sealed (aiokafka's bound of a
    record alone in a batch, the batch's own header included)."""
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, [*headers, _PROOF_AT_MOST]))


@dataclass(frozen=True, slots=True)
class _Waiting:
    """A record given to the writer, not yet sealed."""

    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    size: int
    signed: bool
    """Carries a signature of its own, whatever its place in its batch (a reader judges it alone)."""
    appended: asyncio.Future[RecordMetadata]


class SealedBatches:
    """The records waiting to be sealed, in the order they were given, and the one task that
    seals and sends them: the chain of each partition follows the log's order."""

    def __init__(self, sealer: Sealer, batch_size: int) -> None:
        self._sealer = sealer
        self._batch_size = batch_size
        self._waiting: list[_Waiting] = []
        self._sending: asyncio.Task[None] | None = None
        self._taken = asyncio.Event()

    async def room(self) -> None:
        """Returns once fewer than ``WAITING_AT_MOST`` records wait to be sealed."""
        while len(self._waiting) >= WAITING_AT_MOST:
            self._taken.clear()
            await self._taken.wait()

    def add(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        size: int,
        *,
        signed: bool = False,
    ) -> asyncio.Future[RecordMetadata]:
        """A future of the record's place on the log, resolved once the broker acknowledged it.
        ``signed``: the record carries a signature of its own, not only the last of its batch."""
        appended: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(topic, partition, key, value, headers, size, signed, appended))
        if self._sending is None or self._sending.done():
            # Runs at the loop's next turn: what else is appended in this one joins the batch.
            self._sending = asyncio.create_task(self._send_waiting(producer))
        return appended

    async def drained(self) -> None:
        """Once every record given so far is handed to aiokafka (sent or failed)."""
        if self._sending is not None:
            await asyncio.shield(self._sending)

    async def _send_waiting(self, producer: AIOKafkaProducer) -> None:
        while self._waiting:
            waiting, self._waiting = self._waiting, []
            self._taken.set()
            partitions: dict[tuple[str, int], list[_Waiting]] = {}
            for record in waiting:
                partitions.setdefault((record.topic, record.partition), []).append(record)
            for (topic, partition), records in partitions.items():
                for batch in self._batches(records):
                    await self._send(producer, topic, partition, batch)

    def _batches(self, records: list[_Waiting]) -> list[list[_Waiting]]:
        """The records cut into runs that each fit one record batch."""
        batches: list[list[_Waiting]] = [[]]
        taken = 0
        for record in records:
            if batches[-1] and taken + record.size > self._batch_size:
                batches.append([])
                taken = 0
            batches[-1].append(record)
            taken += record.size
        return batches

    async def _send(self, producer: AIOKafkaProducer, topic: str, partition: int, records: list[_Waiting]) -> None:
        try:
            builder = producer.create_batch()
            last = len(records) - 1
            for i, record in enumerate(records):
                sign = i == last or record.signed
                proof = self._sealer.seal(topic, partition, record.key, record.value, record.headers, sign=sign)
                headers = [*record.headers, (PROOF_HEADER, proof)]
                if builder.append(timestamp=None, key=record.key, value=record.value, headers=headers) is None:
                    raise RuntimeError(f"a record of {record.size} bytes at most did not fit the batch")
            sent = await producer.send_batch(builder, topic, partition=partition)
        except Exception as error:  # the records' futures carry it to whoever appended them
            for record in records:
                if not record.appended.done():
                    record.appended.set_exception(error)
            return
        sent.add_done_callback(lambda done: _resolve(done, records))


def _resolve(sent: asyncio.Future[RecordMetadata], records: list[_Waiting]) -> None:
    """Each record's place from its batch's: the batch's first offset and the record's index."""
    if sent.cancelled():
        for record in records:
            record.appended.cancel()
        return
    if (error := sent.exception()) is not None:
        for record in records:
            if not record.appended.done():
                record.appended.set_exception(error)
        return
    first = sent.result()
    for i, record in enumerate(records):
        if not record.appended.done():
            record.appended.set_result(first._replace(offset=first.offset + i))
