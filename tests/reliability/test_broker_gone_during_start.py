"""A broker that goes away just after a service's clients started, as the chaos test once did
with seed 1796648472: tasks was killed and started again two seconds before a broker restart; its
rebuild asked the broker for the events topic's partitions while the broker was down, the start
failed, and the service exited. The partitions are asked again until the broker answers."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition

from shared.contract.topics import EVENTS
from shared.kafka.consumer import open_consumer, partitions_of
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
