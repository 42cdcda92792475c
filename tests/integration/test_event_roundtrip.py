"""Every event type makes a round trip through the real broker: produce, consume, decode, equal."""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition

from shared.contract.codec import decode_record
from shared.contract.envelope import CloudEvent
from shared.kafka.producer import EventProducer
from shared.provenance.keys import SigningKey
from shared.settings import KafkaSettings
from tests.conftest import read_from
from tests.samples import sample_events


async def test_every_event_type_round_trips_through_kafka(kafka_settings: KafkaSettings, tasks_key: SigningKey) -> None:
    events = sample_events()
    async with EventProducer(kafka_settings, client_id="test-roundtrip", signing_key=tasks_key) as producer:
        acknowledged = await producer.publish_all(events)

    starts: dict[TopicPartition, int] = {}
    for meta in acknowledged:
        partition = TopicPartition(meta.topic, meta.partition)
        starts[partition] = min(starts.get(partition, meta.offset), meta.offset)
    wanted = {event.id for event in events}

    def all_seen(records: list[Any]) -> bool:
        return wanted <= {dict(r.headers).get("ce_id", b"").decode() for r in records}

    records = await read_from(kafka_settings, starts, until=all_seen)
    decoded = {
        event.id: event for event in map(decode_record, records) if isinstance(event, CloudEvent) and event.id in wanted
    }
    assert set(decoded) == wanted
    for event in events:
        assert decoded[event.id] == event
        assert decoded[event.id].data.__class__ is event.data.__class__


async def test_records_are_keyed_by_aggregate_so_one_aggregate_stays_on_one_partition(
    kafka_settings: KafkaSettings, tasks_key: SigningKey
) -> None:
    events = [e for e in sample_events() if e.subject == "t-1" and e.topic == "policy.events"]
    async with EventProducer(kafka_settings, client_id="test-keys", signing_key=tasks_key) as producer:
        acknowledged = await producer.publish_all(events)
    assert len({meta.partition for meta in acknowledged}) == 1
    offsets = [meta.offset for meta in acknowledged]
    assert offsets == sorted(offsets)
