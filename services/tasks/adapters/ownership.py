"""With several tasks instances: the partitions this one decides, each appended through a
transactional writer of its own, handed out by Kafka's consumer group on ``policy.commands``.

Each partition has one transactional id (``<prefix>-p<partition>``), whichever instance owns it:
taking a partition registers that id, which fences the previous owner's writer even if that
owner has not noticed the rebalance, and aborts what it left open. Only then, once this
instance has read the whole events topic up to its end, does it decide for the partition.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiokafka import ConsumerRebalanceListener, TopicPartition

from services.tasks.adapters.event_log import Committed, Failed, KafkaEventLog, ignore_failure, ignore_placed
from services.tasks.application.answers import NotOwner
from shared.contract.envelope import AnyEvent
from shared.contract.topics import COMMANDS
from shared.kafka.partitioning import partition_for
from shared.logging import get_logger
from shared.provenance.keys import SigningKey
from shared.settings import KafkaSettings

log = get_logger(__name__)


class PartitionedEventLog:
    """The ``EventLog`` and the ``Ownership`` of an instance that is one of several writers."""

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        transactional_prefix: str,
        signing_key: SigningKey,
        caught_up: Callable[[], Awaitable[None]],
    ) -> None:
        self._kafka = kafka
        self._signing_key = signing_key
        self._prefix = transactional_prefix
        self._caught_up = caught_up
        self._writers: dict[int, KafkaEventLog] = {}
        self._owned: set[int] = set()
        self.partitions = kafka.partitions
        """How many partitions the events and commands topics have (read from the broker at start)."""
        self.fenced = False  # a fenced partition is one moved away, not the end of the instance

    @property
    def recovering(self) -> bool:
        return any(writer.recovering for writer in self._writers.values())

    @property
    def owned(self) -> frozenset[int]:
        return frozenset(self._owned)

    def partition_of(self, aggregate_id: str) -> int:
        return partition_for(aggregate_id, self.partitions)

    def owns(self, partition: int) -> bool:
        return partition in self._owned

    def writes(self, partition: int) -> bool:
        return partition in self._writers

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        await self.release(list(self._writers))

    def submit(
        self,
        events: list[AnyEvent],
        committed: Committed = ignore_placed,
        failed: Failed = ignore_failure,
        *,
        partition: int | None = None,
    ) -> asyncio.Future[None]:
        if partition is None or partition not in self._owned:
            raise NotOwner(-1 if partition is None else partition)
        writer = self._writers[partition]
        if writer.fenced:
            self._owned.discard(partition)
            raise NotOwner(partition)
        return writer.submit(events, committed, failed)

    async def caught_up(self) -> None:
        """Returns once the view holds every record committed on the log when it was called,
        the other writers' appends included."""
        await self._caught_up()

    async def acquire(self, partitions: list[int]) -> None:
        """Fences each partition's previous writer, reads the log to its end, then decides."""
        for partition in partitions:
            if partition in self._writers:
                continue
            writer = KafkaEventLog(
                self._kafka,
                transactional_id=f"{self._prefix}-p{partition}",
                signing_key=self._signing_key,
                partition=partition,
            )
            await writer.start()
            self._writers[partition] = writer
        await self._caught_up()
        self._owned.update(partitions)
        log.info("deciding for partitions", partitions=sorted(self._owned))

    async def release(self, partitions: list[int]) -> None:
        """Stops deciding for ``partitions``, lets their appends in flight finish, closes their writers."""
        self._owned.difference_update(partitions)
        for partition in partitions:
            writer = self._writers.get(partition)
            if writer is None:
                continue
            await writer.drain()
            del self._writers[partition]
            await writer.stop()
        if partitions:
            log.info("no longer deciding for partitions", released=sorted(partitions), kept=sorted(self._owned))


class CommandPartitions(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no types
    """Ownership follows the group's assignment of the command topic."""

    def __init__(self, log_: PartitionedEventLog) -> None:
        self._log = log_

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._log.release([tp.partition for tp in revoked if tp.topic == COMMANDS])

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._log.acquire([tp.partition for tp in assigned if tp.topic == COMMANDS])
