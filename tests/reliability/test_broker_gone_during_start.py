"""A broker that goes away just after a service's clients started, as the chaos test once did
with seed 1796648472: tasks was killed and started again two seconds before a broker restart; its
rebuild asked the broker for the events topic's partitions while the broker was down, the start
failed, and the service exited. The partitions are asked again until the broker answers."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition

from shared.contract.topics import EVENTS
from shared.kafka.consumer import offsets_of, open_consumer, partitions_of
from tests.conftest import Broker


async def test_the_partitions_of_a_topic_are_read_once_a_broker_that_went_away_is_back(spare_broker: Broker) -> None:
    kafka = spare_broker.settings
    async with open_consumer(kafka, client_id="test-partitions") as consumer:
        assert spare_broker.script("stop").returncode == 0
        asked = asyncio.create_task(partitions_of(consumer, [EVENTS]))
        # Long enough for several attempts while no broker answers; it must not give up.
        gave_up, _ = await asyncio.wait({asked}, timeout=2)
        assert not gave_up, f"gave up while the broker was down: {asked.exception()!r}"
        assert (await asyncio.to_thread(spare_broker.script, "start")).returncode == 0
        partitions = await asyncio.wait_for(asked, timeout=120)
    assert partitions == [TopicPartition(EVENTS, p) for p in range(kafka.partitions)]


async def test_the_ends_of_the_log_are_read_once_a_broker_gone_longer_than_a_request_is_back(
    spare_broker: Broker,
) -> None:
    """Later in a start (the rebuild's end offsets, a snapshot's check, the audit's seek to its
    store), a broker gone for longer than a request's timeout ended the start: aiokafka raises
    KafkaTimeoutError when the offsets it asks for do not come within it."""
    kafka = spare_broker.settings.model_copy(update={"request_timeout_ms": 1_000})
    partitions = [TopicPartition(EVENTS, p) for p in range(kafka.partitions)]
    async with open_consumer(kafka, client_id="test-offsets") as consumer:
        assert spare_broker.script("stop").returncode == 0
        asked = asyncio.create_task(offsets_of(consumer, partitions))
        beginnings = asyncio.create_task(offsets_of(consumer, partitions, end=False))
        gave_up, _ = await asyncio.wait({asked, beginnings}, timeout=3, return_when=asyncio.FIRST_COMPLETED)
        assert not gave_up, f"gave up while the broker was down: {next(iter(gave_up)).exception()!r}"
        assert (await asyncio.to_thread(spare_broker.script, "start")).returncode == 0
        ends = await asyncio.wait_for(asked, timeout=120)
        starts = await asyncio.wait_for(beginnings, timeout=120)
    assert set(ends) == set(starts) == set(partitions)
    assert all(starts[tp] <= ends[tp] for tp in partitions)
