"""``deploy/kafka.sh start --fresh`` wipes the data; a plain restart keeps it."""

from __future__ import annotations

from aiokafka import TopicPartition

from shared.contract.catalog import PlanApproved
from shared.contract.envelope import new_event
from shared.contract.topics import EVENTS
from shared.kafka.producer import EventProducer
from shared.provenance.keys import SigningKey
from tests.conftest import Broker, end_offsets


async def test_restart_keeps_the_data_and_fresh_wipes_it(spare_broker: Broker, tasks_key: SigningKey) -> None:
    settings = spare_broker.settings
    async with EventProducer(settings, client_id="test-fresh", signing_key=tasks_key) as producer:
        meta = await producer.publish(new_event(PlanApproved(plan_id="p-1", title="Plan"), actor="u-sc"))
    partition = TopicPartition(EVENTS, meta.partition)

    spare_broker.script("restart")
    assert (await end_offsets(settings, EVENTS))[partition] == meta.offset + 1

    fresh = spare_broker.script("start", "--fresh")
    assert "wiping" in fresh.stderr
    assert sum((await end_offsets(settings, EVENTS)).values()) == 0
