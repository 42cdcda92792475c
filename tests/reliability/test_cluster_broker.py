"""``deploy/kafka.sh start --nodes 3``: three KRaft nodes whose topics survive one of them
stopping, as the multi-broker deployment relies on. Real brokers, started by the script."""

from __future__ import annotations

import asyncio
import re

from shared.contract.catalog import TaskAssigned
from shared.contract.codes import Department
from shared.contract.envelope import new_event
from shared.contract.topics import EVENTS
from shared.kafka.consumer import read_since
from shared.kafka.producer import EventProducer
from shared.provenance.keys import SigningKey
from shared.settings import KafkaSettings
from tests.conftest import Broker, cluster_settings, eventually


def partitions(status: str) -> dict[str, tuple[int, set[int]]]:
    """From ``status``: each partition's leader and in-sync replicas."""
    found = re.findall(r"^(\S+/\d+): leader (-?\d+), replicas [\d,]+, in sync ([\d,]*)$", status, re.MULTILINE)
    return {name: (int(leader), {int(n) for n in isr.split(",") if n}) for name, leader, isr in found}


async def publish_one(settings: KafkaSettings, key: SigningKey, note: str) -> None:
    event = new_event(TaskAssigned(task_id=note, lead_department=Department.JILIN), actor="u-test", aggregateversion=1)
    async with EventProducer(settings, client_id="cluster-test", signing_key=key) as producer:
        await producer.publish(event)


async def test_three_nodes_replicate_every_topic_and_keep_taking_writes_with_one_stopped(
    cluster: Broker, tasks_key: SigningKey
) -> None:
    settings = cluster_settings(cluster)
    status = cluster.script("status", check=False)
    assert status.returncode == 0, status.stderr
    assert all(f"node {i} running" in status.stderr for i in (1, 2, 3)), status.stderr
    before = partitions(status.stderr)
    assert f"{EVENTS}/0" in before and all(isr == {1, 2, 3} for _, isr in before.values()), status.stderr

    led_by_two = [name for name, (leader, _) in before.items() if leader == 2]
    assert cluster.script("stop", "--node", "2").returncode == 0

    def leaders_moved() -> dict[str, tuple[int, set[int]]] | None:
        now = partitions(cluster.script("status", check=False).stderr)
        return now if now and all(leader != 2 and 2 not in isr for leader, isr in now.values()) else None

    async def probe() -> dict[str, tuple[int, set[int]]] | None:
        return await asyncio.to_thread(leaders_moved)

    during = await eventually(probe, timeout=60, what="leaders to leave the stopped node")
    assert all(leader in (1, 3) for name, (leader, _) in during.items() if name in led_by_two)
    await publish_one(settings, tasks_key, "while-node-2-is-down")  # acks=all with two of three in sync

    assert cluster.script("start", "--nodes", "3").returncode == 0

    def back_in_sync() -> dict[str, tuple[int, set[int]]] | None:
        now = partitions(cluster.script("status", check=False).stderr)
        return now if now and all(isr == {1, 2, 3} for _, isr in now.values()) else None

    async def probe_back() -> dict[str, tuple[int, set[int]]] | None:
        return await asyncio.to_thread(back_in_sync)

    await eventually(probe_back, timeout=90, what="node 2 back in every in-sync replica set")
    on_log = await read_since(settings, EVENTS, 0)
    assert [r.key for r in on_log] == [b"while-node-2-is-down"], "the write taken during the outage is on the log"
