"""The one way to append events: an idempotent aiokafka producer with ``acks=all``.

A ``transactional_id`` turns on Kafka transactions, so that a restarted or second instance
with the same id fences the old one (it can no longer append).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from shared.contract.codec import DecodeFailure, Headers, encode
from shared.contract.envelope import CloudEvent
from shared.contract.topics import DEADLETTER
from shared.settings import KafkaSettings

DLQ_HEADER_PREFIX = "dlq_"


class EventProducer:
    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        client_id: str,
        transactional_id: str | None = None,
        linger_ms: int = 5,
        retry_backoff_ms: int = 100,
    ) -> None:
        self._config = {
            "bootstrap_servers": kafka.bootstrap_servers,
            "client_id": client_id,
            "acks": "all",
            "enable_idempotence": True,
            "transactional_id": transactional_id,
            "linger_ms": linger_ms,
            "max_batch_size": 256 * 1024,
            "request_timeout_ms": kafka.request_timeout_ms,
            "retry_backoff_ms": retry_backoff_ms,
        }
        self._producer: AIOKafkaProducer

    async def start(self) -> None:
        # aiokafka binds to the running event loop, so the client is made here, not in __init__.
        self._producer = AIOKafkaProducer(**self._config)
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.stop()

    async def enqueue(
        self, event: CloudEvent, *, topic: str | None = None, partition: int | None = None
    ) -> asyncio.Future[RecordMetadata]:
        """Buffer the event; the returned future resolves once the broker acknowledged it.

        ``topic`` and ``partition`` override the contract's routing (tests and benchmarks).
        """
        record = encode(event)
        return await self._producer.send(
            topic or record.topic, record.value, key=record.key, headers=list(record.headers), partition=partition
        )

    async def publish(self, event: CloudEvent) -> RecordMetadata:
        """Append one event and wait for the broker's acknowledgement."""
        return await (await self.enqueue(event))

    async def publish_all(self, events: Iterable[CloudEvent]) -> list[RecordMetadata]:
        """Append events in order and wait until every one is acknowledged."""
        futures = [await self.enqueue(event) for event in events]
        return list(await asyncio.gather(*futures))

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
        """Send the original bytes to the dead-letter topic, with where they came from and why."""
        provenance: Headers = tuple(
            (DLQ_HEADER_PREFIX + name, value.encode())
            for name, value in (
                ("reason", failure.reason),
                ("topic", topic),
                ("partition", str(partition)),
                ("offset", str(offset)),
                ("consumer", consumer),
                ("time", datetime.now(UTC).isoformat().replace("+00:00", "Z")),
            )
        )
        future = await self._producer.send(
            DEADLETTER, failure.value, key=failure.key, headers=[*failure.headers, *provenance]
        )
        return await future
