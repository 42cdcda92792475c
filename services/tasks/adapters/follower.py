"""With several tasks instances: the view kept current by reading ``policy.events`` as it
grows (committed records only), whoever appended them; and the outcomes of forwarded commands,
told to the callers waiting for them as they are read."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from services.tasks.adapters.rebuild import RebuildReport, admitted, read_after, take_record
from services.tasks.application.answers import KeyInFlight
from services.tasks.application.view import LogView
from shared.contract.codec import DecodeFailure, decode_record
from shared.contract.envelope import AnyEvent
from shared.kafka.consumer import offsets_of, open_consumer
from shared.provenance.gate import ProofGate
from shared.settings import KafkaSettings
from shared.supervision import Health


class Outcomes:
    """Callers waiting for the events their forwarded command made, by (user, idempotency key)."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, str], asyncio.Future[list[AnyEvent]]] = {}
        self._seen: dict[tuple[str, str], tuple[TopicPartition, list[AnyEvent]]] = {}

    @property
    def waiting(self) -> bool:
        return bool(self._waiting)

    def expect(self, user: str, key: str) -> asyncio.Future[list[AnyEvent]]:
        """KeyInFlight when a request with this key is already waiting here."""
        if (user, key) in self._waiting:
            raise KeyInFlight()
        future = self._waiting[(user, key)] = asyncio.get_running_loop().create_future()
        return future

    def forget(self, user: str, key: str) -> None:
        self._waiting.pop((user, key), None)
        self._seen.pop((user, key), None)

    def saw(self, event: AnyEvent, partition: TopicPartition) -> None:
        key = (event.actor, event.idempotencykey or "")
        if key in self._waiting:
            self._seen.setdefault(key, (partition, []))[1].append(event)

    async def settle(self, consumer: AIOKafkaConsumer) -> None:
        """Answers each caller whose command's events are all read: a command's events are
        one transaction, so all of them are read once the partition is read to the last
        stable offset the broker gave after the first of them."""
        for key, (partition, events) in list(self._seen.items()):
            stable = consumer.last_stable_offset(partition)
            if stable is None or await consumer.position(partition) < stable:
                continue
            del self._seen[key]
            future = self._waiting.pop(key, None)
            if future is not None and not future.done():
                future.set_result(events)


class LogFollower:
    def __init__(self, kafka: KafkaSettings, view: LogView, outcomes: Outcomes, proofs: ProofGate) -> None:
        self._kafka = kafka
        self._proofs = proofs
        self.view = view
        self.outcomes = outcomes
        self.report = RebuildReport()
        self._requests: list[asyncio.Future[None]] = []
        self._targets: list[tuple[dict[TopicPartition, int], asyncio.Future[None]]] = []

    async def caught_up(self) -> None:
        """Returns once the view holds every record committed on the log when it was called."""
        request = asyncio.get_running_loop().create_future()
        self._requests.append(request)
        await request

    async def run(self, health: Health) -> None:
        async with open_consumer(self._kafka, client_id="tasks-follower") as consumer:
            partitions = await read_after(consumer, self.view)
            while True:
                batch = await consumer.getmany(timeout_ms=100, max_records=2000)
                for tp in partitions:
                    for record in await admitted(consumer, self._proofs, tp, batch.get(tp, []), self.report):
                        if record.offset < self.view.positions.offset(record.partition):
                            # This instance appended it and took it in already; it may still
                            # answer a command this instance forwarded before it owned the partition.
                            self._seen_again(record)
                            continue
                        event = take_record(self.view, record, self.report)
                        if event is not None and self.outcomes.waiting:
                            self.outcomes.saw(event, TopicPartition(record.topic, record.partition))
                await self.outcomes.settle(consumer)
                await self._answer(consumer, partitions)
                health.healthy()

    def _seen_again(self, record: ConsumerRecord) -> None:
        if self.outcomes.waiting:
            event = decode_record(record)
            if not isinstance(event, DecodeFailure):
                self.outcomes.saw(event, TopicPartition(record.topic, record.partition))

    async def _answer(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        if self._requests:
            ends = await offsets_of(consumer, partitions)
            self._targets += [(ends, request) for request in self._requests]
            self._requests = []
        if not self._targets:
            return
        positions = {tp: await consumer.position(tp) for tp in partitions}
        waiting = []
        for ends, request in self._targets:
            if any(positions[tp] < end for tp, end in ends.items()):
                waiting.append((ends, request))
            elif not request.done():
                request.set_result(None)
        self._targets = waiting
