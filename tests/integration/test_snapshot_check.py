"""A snapshot's check asks the log for the record its claim names last. A broker that pauses is
waited for: its silence was taken for a log without that record, and a good snapshot was discarded
(the start then rebuilt everything from the log's beginning)."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.contract import catalog as c
from shared.contract.codec import encode
from shared.contract.envelope import new_event
from shared.kafka.connection import client_options
from shared.kafka.consumer import open_consumer
from shared.kafka.snapshots import committed_id_at
from shared.retrying import RetryPolicy
from shared.settings import KafkaSettings
from tests.conftest import Broker

QUICK = RetryPolicy(first=0.5, longest=2, within=30)
"""Patience that a wrong answer would wait out (30 s) and fail on: a record the broker answered
past is known at once."""


async def a_topic(settings: KafkaSettings) -> TopicPartition:
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        name = f"test.{uuid.uuid4().hex[:12]}"
        await admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    return TopicPartition(name, 0)


async def committed(settings: KafkaSettings, tp: TopicPartition) -> str:
    """One event written in a transaction: the event at offset 0, the commit's marker at 1."""
    event = new_event(c.PlanApproved(plan_id=f"p-{uuid.uuid4().hex[:8]}", title="Plan"), actor="u-sc-1")
    encoded = encode(event)
    producer = AIOKafkaProducer(**client_options(settings), transactional_id=f"test-{uuid.uuid4().hex[:8]}")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(tp.topic, encoded.value, key=encoded.key, headers=list(encoded.headers))
    finally:
        await producer.stop()
    return event.id


@asynccontextmanager
async def one_event_read(broker: Broker) -> AsyncIterator[tuple[AIOKafkaConsumer, TopicPartition, str]]:
    """A consumer of a new topic that holds one committed event: the consumer, where, the event's id."""
    tp = await a_topic(broker.settings)
    event_id = await committed(broker.settings, tp)
    async with open_consumer(broker.settings, client_id="test-snapshot-check") as consumer:
        consumer.assign([tp])
        await consumer.end_offsets([tp])
        yield consumer, tp, event_id


async def test_a_broker_that_pauses_is_waited_for_not_taken_for_a_log_without_the_record(
    spare_broker: Broker,
) -> None:
    async with one_event_read(spare_broker) as (consumer, tp, event_id):
        pid = int((spare_broker.data_dir / "kafka.pid").read_text())
        os.kill(pid, signal.SIGSTOP)
        resumed = asyncio.get_running_loop().call_later(8, os.kill, pid, signal.SIGCONT)
        try:
            found = await committed_id_at(consumer, tp, 0, patience=RetryPolicy(first=0.5, longest=2, within=60))
        finally:
            resumed.cancel()
            os.kill(pid, signal.SIGCONT)
    assert found == event_id


async def test_an_offset_that_holds_no_committed_event_is_answered_without_waiting_out_the_patience(
    kafka: Broker,
) -> None:
    async with one_event_read(kafka) as (consumer, tp, event_id):
        assert await committed_id_at(consumer, tp, 0, patience=QUICK) == event_id
        assert await committed_id_at(consumer, tp, 1, patience=QUICK) is None
