"""A share of a topic's partitions, held through a Kafka consumer group without reading them:
how instances of a service divide work by partition (the group coordinator assigns each
partition to exactly one member, and moves it when a member joins, leaves or dies)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from shared.kafka.consumer import new_consumer, stop_consumer
from shared.kafka.partitioning import partition_for
from shared.kafka.patience import started
from shared.logging import get_logger
from shared.settings import KafkaSettings
from shared.supervision import Health

log = get_logger(__name__)

Changed = Callable[[frozenset[int]], Awaitable[None]]
"""Told the partitions just taken (or just given up)."""


async def _nothing(partitions: frozenset[int]) -> None:
    pass


class PartitionShare:
    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        group_id: str,
        topic: str,
        client_id: str,
        session_timeout_ms: int = 6_000,
        taken: Changed = _nothing,
    ) -> None:
        self._kafka = kafka
        self._group_id, self._topic, self._client_id = group_id, topic, client_id
        self._session_timeout_ms = session_timeout_ms
        self._taken = taken
        self._owned: frozenset[int] = frozenset()
        self.partitions = kafka.partitions
        """How many partitions the topic has (read from the group's metadata once assigned)."""

    @property
    def owned(self) -> frozenset[int]:
        return self._owned

    def owns_key(self, key: str) -> bool:
        """Whether the record keyed ``key`` is on a partition this member holds."""
        return partition_for(key, self.partitions) in self._owned

    async def hold(self, health: Health) -> None:
        """Stays in the group until cancelled; polls only to show the coordinator it is alive."""
        consumer = await started(
            lambda: new_consumer(
                self._kafka,
                group_id=self._group_id,
                client_id=self._client_id,
                session_timeout_ms=self._session_timeout_ms,
            ),
            what=self._client_id,
        )
        try:
            consumer.subscribe([self._topic], listener=_Listener(self, consumer))
            while True:
                await consumer.getmany(timeout_ms=500)  # every partition is paused: nothing comes
                health.healthy()
        finally:
            self._owned = frozenset()
            await stop_consumer(consumer)

    async def _assigned(self, consumer: AIOKafkaConsumer, assigned: list[TopicPartition]) -> None:
        consumer.pause(*assigned)
        self.partitions = len(consumer.partitions_for_topic(self._topic) or ()) or self.partitions
        self._owned = frozenset(tp.partition for tp in assigned)
        log.info("holding partitions", topic=self._topic, partitions=sorted(self._owned))
        await self._taken(self._owned)

    def _revoked(self) -> None:
        self._owned = frozenset()


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no types
    def __init__(self, share: PartitionShare, consumer: AIOKafkaConsumer) -> None:
        self._share, self._consumer = share, consumer

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self._share._revoked()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._share._assigned(self._consumer, assigned)
