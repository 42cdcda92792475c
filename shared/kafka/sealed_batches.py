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
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import DefaultRecordBatchBuilder
from aiokafka.structs import RecordMetadata

from shared.provenance.seals import PROOF_HEADER, Sealer

Headers = Sequence[tuple[str, bytes | None]]

_UNSIGNED_PROOF = (PROOF_HEADER, bytes(121))
"""A header as long as the longest proof without a signature: ``1.<kid>.<session>.<n>.<previous>``,
16, 16, at most 20 and 64 characters."""
_SIGNATURE_AT_MOST = 132
"""What a signature adds to a record: ``.`` and 128 hex digits, and a byte more to two lengths."""
_BATCH_HEADER = 61
"""A record batch's own header (v2, KIP-98)."""
_RECORD_OVERHEAD = 21
"""The most a record's length, deltas and attributes add to its key, value and headers."""


_PROOF_BYTES: int = DefaultRecordBatchBuilder.size_of(None, None, [_UNSIGNED_PROOF]) + 1
"""What the proof adds to a record: its header, and a byte more to the count of headers."""


def size_at_most(key: bytes | None, value: bytes | None, headers: Headers) -> int:
    """The most bytes the record takes in a record batch once sealed without a signature."""
    size: int = DefaultRecordBatchBuilder.size_of(key, value, list(headers))
    return size + _PROOF_BYTES + _RECORD_OVERHEAD


@dataclass(slots=True)
class _Waiting:
    """A record given to the writer, not yet sealed (its lane says where it goes)."""

    key: bytes | None
    value: bytes | None
    headers: Headers
    size: int
    signed: bool
    """Carries a signature of its own, whatever its place in its batch (a reader judges it alone)."""
    appended: asyncio.Future[RecordMetadata]


@dataclass(slots=True)
class _Lane:
    """One partition's records waiting to be sealed, and the task sending them a batch at a time."""

    waiting: deque[_Waiting] = field(default_factory=deque)
    size: int = 0
    """What the records waiting take at most, in bytes."""
    sending: asyncio.Task[None] | None = None
    taken: asyncio.Event = field(default_factory=asyncio.Event)


class SealedBatches:
    """The records waiting to be sealed, per partition in the order they were given, and per
    partition one task that seals and sends them: each chain follows its partition's log, and
    a partition waiting for the broker holds up no other."""

    def __init__(self, sealer: Sealer, batch_size: int) -> None:
        self._sealer = sealer
        self._batch_size = batch_size - _BATCH_HEADER - _SIGNATURE_AT_MOST  # the last record's signature
        self._lanes: dict[tuple[str, int], _Lane] = {}

    def full(self, topic: str, partition: int) -> bool:
        """Whether a batch's worth of records waits on the partition already."""
        lane = self._lanes.get((topic, partition))
        return lane is not None and lane.size >= self._batch_size

    async def room(self, topic: str, partition: int) -> None:
        """Returns once less than a batch's worth of records waits on the partition: as aiokafka's
        own ``send`` waits while a batch waits, so that appending and sending take turns a batch
        at a time (with 10,000 records of all partitions allowed to wait, they took turns 5,000
        at a time and the writer appended 25% fewer records a second), and the records of a
        writer whose broker is away do not pile up."""
        while (lane := self._lanes.get((topic, partition))) is not None and lane.size >= self._batch_size:
            lane.taken.clear()
            await lane.taken.wait()

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
        lane = self._lanes.get((topic, partition))
        if lane is None:
            lane = self._lanes[topic, partition] = _Lane()
        size += _SIGNATURE_AT_MOST if signed else 0
        lane.waiting.append(_Waiting(key, value, headers, size, signed, appended))
        lane.size += size
        if lane.sending is None or lane.sending.done():
            # Runs at the loop's next turn: what else is appended in this one joins the batch.
            lane.sending = asyncio.create_task(self._send_lane(producer, topic, partition, lane))
        return appended

    async def drained(self) -> None:
        """Once every record given so far is handed to aiokafka (sent or failed)."""
        sending = [lane.sending for lane in self._lanes.values() if lane.sending is not None]
        await asyncio.shield(asyncio.gather(*sending))

    async def _send_lane(self, producer: AIOKafkaProducer, topic: str, partition: int, lane: _Lane) -> None:
        # While a batch waits for the one before it to go out, the next one fills.
        while lane.waiting:
            batch = self._next_batch(lane.waiting)
            lane.size -= sum(record.size for record in batch)
            lane.taken.set()
            await self._send(producer, topic, partition, batch)

    def _next_batch(self, waiting: deque[_Waiting]) -> list[_Waiting]:
        """The first records waiting, as many as fit one record batch (at least one)."""
        batch = [waiting.popleft()]
        taken = batch[0].size
        while waiting and taken + waiting[0].size <= self._batch_size:
            taken += waiting[0].size
            batch.append(waiting.popleft())
        return batch

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
            builder.close()  # a closed batch goes out at once: an open one lingers, and may be added to
            sent = await producer.send_batch(builder, topic, partition=partition)
        except Exception as error:  # the records' futures carry it to whoever appended them
            _fail(records, error)
            return
        sent.add_done_callback(lambda done: _resolve(done, records))


def _resolve(sent: asyncio.Future[RecordMetadata], records: list[_Waiting]) -> None:
    """Each record's place from its batch's: the batch's first offset and the record's index."""
    if sent.cancelled():
        for record in records:
            record.appended.cancel()
        return
    if (error := sent.exception()) is not None:
        _fail(records, error)
        return
    first = sent.result()
    for i, record in enumerate(records):
        if not record.appended.done():
            record.appended.set_result(RecordMetadata(*first[:3], first.offset + i, *first[4:]))


def _fail(records: list[_Waiting], error: BaseException) -> None:
    for record in records:
        if not record.appended.done():
            record.appended.set_exception(error)
