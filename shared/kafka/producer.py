"""The one way to append records: an idempotent aiokafka producer with ``acks=all`` that seals
every record with its writer's proof (``shared/provenance/seals.py``).

A ``transactional_id`` turns on Kafka transactions, so that a restarted or second instance
with the same id fences the old one (it can no longer append); its writer signs the last record
of each transaction on each partition. Without one, records are sent a record batch at a time
and the last of each batch is signed (``shared/kafka/sealed_batches.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.producer import sender
from aiokafka.structs import RecordMetadata

from shared.contract.codec import DecodeFailure, encode
from shared.contract.envelope import AnyEvent
from shared.contract.secrets import strip_secrets
from shared.contract.topics import DEADLETTER
from shared.kafka.connection import client_options
from shared.kafka.partitioning import partition_of_key
from shared.kafka.patience import started
from shared.kafka.sealed_batches import SealedBatches, size_at_most
from shared.provenance.keys import SigningKey
from shared.provenance.seals import PROOF_HEADER, Sealer
from shared.settings import KafkaSettings

DLQ_HEADER_PREFIX = "dlq_"
MAX_REQUEST_BYTES = 1_048_576
"""The largest record a writer sends (aiokafka's default, the broker's ``message.max.bytes``)."""
BATCH_BYTES = 256 * 1024


MARKERS_POLL_SECONDS = 0.002
"""How long to wait before asking again to add a partition while the broker still writes the
previous transaction's markers. ``bench.transactions``: about two such answers come per
transaction whatever the wait, so aiokafka's 20 ms were most of every transaction (60 ms a
transaction on three brokers, 25 on one); 2 ms make them 13 and 9 ms with as many requests."""


def _wait_for_markers_at_most(seconds: float) -> None:
    """A transaction's first partition is refused as "concurrent transactions" while the broker
    still writes the previous one's markers (KAFKA-5477); aiokafka then waits
    ``sender.BACKOFF_OVERRIDE`` (20 ms) and asks again. This lowers that wait for the whole
    process (it is aiokafka's global), never above ``retry.backoff.ms``."""
    sender.BACKOFF_OVERRIDE = min(sender.BACKOFF_OVERRIDE, MARKERS_POLL_SECONDS, seconds)


class EventProducer:
    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        client_id: str,
        signing_key: SigningKey,
        transactional_id: str | None = None,
        linger_ms: int = 5,
        retry_backoff_ms: int = 100,
    ) -> None:
        self._sealer = Sealer(signing_key)
        self._kafka = kafka
        self._config = {
            "client_id": client_id,
            "acks": "all",
            "enable_idempotence": True,
            "transactional_id": transactional_id,
            "linger_ms": linger_ms,
            "max_batch_size": BATCH_BYTES,
            "max_request_size": MAX_REQUEST_BYTES,
            "retry_backoff_ms": retry_backoff_ms,
        }
        self._producer: AIOKafkaProducer
        self._batches: SealedBatches | None = None
        if transactional_id is None:
            self._batches = SealedBatches(self._sealer, BATCH_BYTES)
        else:
            _wait_for_markers_at_most(retry_backoff_ms / 1000)

    async def start(self) -> None:
        # aiokafka binds to the running event loop, so the client is made here, not in __init__.
        # The password is read here, not before: a producer that never starts needs none.
        options = {**client_options(self._kafka), **self._config}
        self._producer = await started(lambda: AIOKafkaProducer(**options), what=str(self._config["client_id"]))

    async def stop(self) -> None:
        if self._batches is not None:
            await self._batches.drained()
        await self._producer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.stop()

    async def partition_of(self, topic: str, key: bytes | None) -> int:
        """The partition a record keyed ``key`` goes to (the default partitioner's choice): a
        record's proof names its partition, so it is chosen before the record is sealed."""
        partitions = len(await self._producer.partitions_for(topic))
        return 0 if key is None else partition_of_key(key, partitions)

    async def enqueue(
        self, event: AnyEvent, *, topic: str | None = None, partition: int | None = None, sign: bool | None = None
    ) -> asyncio.Future[RecordMetadata]:
        """Buffer the event; the returned future resolves once the broker acknowledged it.

        ``topic`` and ``partition`` override the contract's routing (tests and benchmarks).
        ``sign``: whether the record carries a signature of its own. In a transaction every
        record does unless told not to (it is then vouched for by a later signed one on its
        partition, in the same transaction); outside one, the last record of each batch does,
        and any record told to."""
        record = encode(event)
        return await self._send(
            topic or record.topic, record.value, key=record.key, headers=record.headers, partition=partition, sign=sign
        )

    async def _send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None,
        headers: Sequence[tuple[str, bytes | None]],
        partition: int | None,
        sign: bool | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        if partition is None:
            partition = await self.partition_of(topic, key)
        if self._batches is not None:
            size = size_at_most(key, value, headers)
            if size > MAX_REQUEST_BYTES:
                raise MessageSizeTooLargeError(f"the record takes up to {size} bytes, over {MAX_REQUEST_BYTES}")
            if self._batches.full(topic, partition):
                await self._batches.room(topic, partition)
            return self._batches.add(self._producer, topic, partition, key, value, headers, size, signed=bool(sign))
        proof = self._sealer.seal(topic, partition, key, value, headers, sign=sign is None or sign)
        sent: asyncio.Future[RecordMetadata] = await self._producer.send(
            topic, value, key=key, headers=[*headers, (PROOF_HEADER, proof)], partition=partition
        )
        return sent

    async def publish(self, event: AnyEvent) -> RecordMetadata:
        """Append one event and wait for the broker's acknowledgement."""
        return await (await self.enqueue(event))

    async def publish_all(self, events: Iterable[AnyEvent]) -> list[RecordMetadata]:
        """Append events in order and wait until every one is acknowledged."""
        futures = [await self.enqueue(event) for event in events]
        return list(await asyncio.gather(*futures))

    async def send(
        self, topic: str, value: bytes, *, key: bytes, headers: list[tuple[str, bytes | None]], partition: int
    ) -> RecordMetadata:
        """A record that is not an event (a command forwarded to its owner), acknowledged. It
        carries a signature of its own: its reader judges it alone."""
        return await (await self._send(topic, value, key=key, headers=headers, partition=partition, sign=True))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Everything published inside is committed together, or aborted together."""
        async with self._producer.transaction():
            yield

    async def dead_letter(
        self,
        failure: DecodeFailure,
        *,
        topic: str,
        partition: int,
        offset: int,
        consumer: str,
    ) -> RecordMetadata:
        """Send the original bytes to the dead-letter topic, with where they came from and why.

        Secret headers (a command's bearer token) are removed first and named in
        ``dlq_redacted``; a record too large to travel with its provenance keeps the provenance
        and a digest of its value instead of the value."""
        headers, removed = strip_secrets(failure.headers)
        provenance = dead_letter_headers(failure.reason, topic, partition, offset, consumer, removed)
        kept = [(DLQ_HEADER_PREFIX + name if name == PROOF_HEADER else name, raw) for name, raw in headers]
        try:
            future = await self._send(
                DEADLETTER, failure.value, key=failure.key, headers=[*kept, *provenance], partition=None
            )
        except MessageSizeTooLargeError:
            future = await self._send(
                DEADLETTER,
                None,
                key=(failure.key or b"")[:1024],
                headers=[*provenance, *_digest_of(failure.value)],
                partition=None,
            )
        return await future


def dead_letter_headers(
    reason: str, topic: str, partition: int, offset: int, consumer: str, removed: tuple[str, ...]
) -> list[tuple[str, bytes | None]]:
    provenance = [
        ("reason", reason[:4000]),
        ("topic", topic),
        ("partition", str(partition)),
        ("offset", str(offset)),
        ("consumer", consumer),
        ("time", datetime.now(UTC).isoformat().replace("+00:00", "Z")),
    ]
    if removed:
        provenance.append(("redacted", ",".join(removed)))
    return [(DLQ_HEADER_PREFIX + name, value.encode()) for name, value in provenance]


def _digest_of(value: bytes | None) -> list[tuple[str, bytes | None]]:
    size = 0 if value is None else len(value)
    digest = hashlib.sha256(value or b"").hexdigest()
    return [(DLQ_HEADER_PREFIX + "dropped", f"value of {size} bytes, sha256 {digest}: too large to keep".encode())]
