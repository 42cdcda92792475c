"""Two tasks instances share the writes by partition: each decides the partitions the consumer
group gives it and forwards the rest through the command topic. Whichever instance a caller
reaches, If-Match, Idempotency-Key and per-aggregate order hold as with one; when an owner is
killed, the other takes its partitions over."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata

from policytrack.processes import ServiceProcess
from services.tasks.adapters.forwarding import Forwarded
from shared.contract.codec import decode_record
from shared.contract.envelope import CloudEvent
from shared.contract.topics import COMMANDS, EVENTS
from shared.kafka.connection import client_options
from shared.kafka.consumer import open_consumer
from shared.kafka.partitioning import partition_for
from shared.settings import KafkaSettings
from tests.conftest import (
    JILIN,
    SC,
    Broker,
    ServiceFactory,
    department_system,
    end_offsets,
    eventually,
    new_task,
    read_from,
    readiness,
)


def partitioned_pair(
    service_factory: ServiceFactory, group: str | None = None
) -> tuple[ServiceProcess, ServiceProcess]:
    shared = {
        "POLICYTRACK_TASKS_PARTITIONED_WRITERS": "true",
        "POLICYTRACK_TASKS_TRANSACTIONAL_ID": f"policytrack-tasks-owners-{uuid.uuid4().hex[:8]}",
        "POLICYTRACK_TASKS_CONSUMER_GROUP": group or f"policytrack-tasks-owners-{uuid.uuid4().hex[:8]}",
    }
    return service_factory("tasks", **shared).start(), service_factory("tasks", **shared).start()


async def deciding(*instances: ServiceProcess) -> list[set[int]]:
    return [set((await readiness(instance))["deciding_partitions"]) for instance in instances]


async def split_between(first: ServiceProcess, second: ServiceProcess, partitions: int) -> list[set[int]]:
    async def probe() -> list[set[int]] | None:
        owned = await deciding(first, second)
        every = owned[0] | owned[1]
        return owned if every == set(range(partitions)) and not owned[0] & owned[1] and all(owned) else None

    return await eventually(probe, timeout=60, what="the partitions split between both instances")


async def tasks_until(
    make: Callable[[int], Awaitable[str]], enough: Callable[[list[str]], bool], *, at_least: int
) -> list[str]:
    """Task ids are random, so where they land is too: tasks are made until ``enough`` holds
    of them (a fixed number missed the partitions a test needs about one run in forty)."""
    tasks: list[str] = []
    while len(tasks) < at_least or not enough(tasks):
        assert len(tasks) < 100, "the tasks never landed on the partitions the test needs"
        tasks.append(await make(len(tasks)))
    return tasks


def partitions_of(tasks: list[str], kafka: KafkaSettings) -> set[int]:
    return {partition_for(task, kafka.partitions) for task in tasks}


async def test_any_instance_takes_any_command_and_the_owner_decides(
    service_factory: ServiceFactory, kafka: Broker, kafka_settings: KafkaSettings, keys_dir: Path
) -> None:
    first, second = partitioned_pair(service_factory)
    owned = await split_between(first, second, kafka_settings.partitions)
    start = await end_offsets(kafka_settings, EVENTS)
    async with (
        httpx.AsyncClient(base_url=first.url, timeout=30) as one,
        httpx.AsyncClient(base_url=second.url, timeout=30) as other,
    ):
        plan = (await one.post("/v1/plans", headers=SC, json={"title": "Plan"})).json()["id"]
        tasks = await tasks_until(
            lambda n: new_task((one, other)[n % 2], plan, n),
            lambda made: all(owned[i] & partitions_of(made, kafka_settings) for i in (0, 1)),
            at_least=12,
        )

        # Through the instance that does not own it, with If-Match: the owner decides.
        for task in tasks:
            via = other if partition_for(task, kafka_settings.partitions) in owned[0] else one
            answer = await via.post(
                f"/v1/tasks/{task}/progress", headers={**JILIN, "If-Match": '"2"'}, json={"percent": 10}
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["version"] == 3
            stale = await via.post(
                f"/v1/tasks/{task}/progress", headers={**JILIN, "If-Match": '"2"'}, json={"percent": 20}
            )
            assert stale.status_code == 412, stale.text
            assert stale.headers["content-type"].startswith("application/problem+json")

        # The same Idempotency-Key through both instances: one event, the same answer; another
        # request under the key is refused, wherever it arrives.
        task = tasks[0]
        keyed = {**JILIN, "Idempotency-Key": f"k-{uuid.uuid4().hex}"}
        answers = [
            await via.post(f"/v1/tasks/{task}/progress", headers=keyed, json={"percent": 30}) for via in (one, other)
        ]
        assert [a.status_code for a in answers] == [200, 200]
        assert answers[0].json() == answers[1].json()
        for via in (one, other):
            reused = await via.post(f"/v1/tasks/{task}/progress", headers=keyed, json={"percent": 31})
            assert reused.status_code == 422, reused.text

        # Concurrent commands on one aggregate through both instances: one order, no gap, no twice.
        racing = tasks[1]
        results = await asyncio.gather(
            *(
                (one, other)[n % 2].post(
                    f"/v1/tasks/{racing}/progress", headers=JILIN, json={"percent": 40 + n, "note": f"report {n}"}
                )
                for n in range(20)
            )
        )
        assert {r.status_code for r in results} == {200}, [r.text for r in results if r.status_code != 200]
        assert sorted(r.json()["version"] for r in results) == list(range(4, 24))

        # A read that names the version it must reflect gets it from either instance.
        for via in (one, other):
            read = await via.get(f"/v1/tasks/{racing}", headers=JILIN, params={"min_version": 23})
            assert read.status_code == 200 and read.json()["version"] == 23, read.text

        # A command-topic record keyed by something else is sent on to its aggregate's partition.
        misrouted = f"misrouted-{uuid.uuid4().hex[:8]}"
        wrong = (partition_for(racing, kafka_settings.partitions) + 1) % kafka_settings.partitions
        jilin = department_system(kafka, keys_dir, "JILIN", "u-jilin", "implementer")
        _, value, headers = jilin.command(
            "report_progress", {"task_id": racing, "percent": 90, "note": "misrouted"}, correlation=misrouted
        )
        await jilin.send((b"not-the-aggregate", value, headers), partition=wrong)
        moved = await via.get(f"/v1/tasks/{racing}", headers=JILIN, params={"min_version": 24})
        assert moved.status_code == 200 and moved.json()["percent"] == 90, moved.text

    records = await read_from(kafka_settings, start, until=lambda rs: False, timeout=1)
    versions = Counter(
        (e.subject, e.aggregateversion)
        for e in map(decode_record, records)
        if isinstance(e, CloudEvent) and e.subject in tasks
    )
    assert set(versions.values()) == {1}, "no version of a task appended twice"
    assert sorted(v or 0 for (s, v) in versions if s == racing) == list(range(1, 25))
    handled = [r for r in records if (e := decode_record(r)) and getattr(e, "correlationid", None) == misrouted]
    assert len(handled) == 1 and handled[0].partition != wrong, "the misrouted command handled once, on its partition"
    assert sum(1 for (s, _) in versions if s == task) == 4, "created, assigned, 10%, and the keyed 30% once"


async def test_a_killed_owner_s_partitions_move_to_the_survivor(
    service_factory: ServiceFactory, kafka_settings: KafkaSettings
) -> None:
    first, second = partitioned_pair(service_factory)
    owned = await split_between(first, second, kafka_settings.partitions)
    async with httpx.AsyncClient(base_url=second.url, timeout=30) as survivor:
        plan = (await survivor.post("/v1/plans", headers=SC, json={"title": "Plan"})).json()["id"]
        tasks = await tasks_until(
            lambda n: new_task(survivor, plan, n),
            lambda made: bool(owned[0] & partitions_of(made, kafka_settings)),
            at_least=9,
        )
        orphaned = [task for task in tasks if partition_for(task, kafka_settings.partitions) in owned[0]]

        first.kill()
        killed_at = time.monotonic()
        for task in orphaned:
            while True:
                answer = await survivor.post(
                    f"/v1/tasks/{task}/progress",
                    headers={**JILIN, "Idempotency-Key": f"after-kill-{task}"},
                    json={"percent": 50},
                )
                if answer.status_code != 503:
                    break
                assert "Retry-After" in answer.headers
            assert answer.status_code == 200, answer.text
            assert answer.json()["version"] == 3, "once, whatever the retries"
        print(f"commands for the killed owner's partitions resumed {time.monotonic() - killed_at:.1f} s after the kill")
        assert (await deciding(second))[0] == set(range(kafka_settings.partitions))


async def committed(settings: KafkaSettings, group: str, partition: TopicPartition) -> int:
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=[partition])
    finally:
        await admin.close()
    return offsets[partition].offset if partition in offsets else -1


async def commit_at(settings: KafkaSettings, group: str, partition: TopicPartition, offset: int) -> bool:
    """Puts the group's committed offset back to where an instance that died between forwarding
    and committing leaves it (once the dead members' sessions have expired, the group has none,
    and any client may commit for it)."""
    async with open_consumer(settings, group_id=group) as consumer:
        consumer.assign([partition])
        try:
            await consumer.commit({partition: offset})
        except KafkaError:
            return False
    return True


async def task_created(
    settings: KafkaSettings, correlation: str, since: dict[TopicPartition, int]
) -> list[CloudEvent[Any]]:
    records = await read_from(settings, since, until=lambda rs: False, timeout=0.5)
    return [
        e
        for e in map(decode_record, records)
        if isinstance(e, CloudEvent) and e.correlationid == correlation and e.type.endswith("task.created.v1")
    ]


async def forwarded_copies(
    settings: KafkaSettings, correlation: str, since: dict[TopicPartition, int]
) -> list[Any] | None:
    """The forwarded copies of the command sent with ``correlation``, once there are two."""
    records = await read_from(settings, since, until=lambda rs: False, timeout=0.5)
    copies = [
        r
        for r in records
        if dict(r.headers).get("correlationid") == correlation.encode() and Forwarded.CREATED in dict(r.headers)
    ]
    return copies if len(copies) >= 2 else None


async def test_a_create_read_again_after_a_crash_between_forward_and_commit_creates_one_task(
    service_factory: ServiceFactory, kafka: Broker, kafka_settings: KafkaSettings, keys_dir: Path
) -> None:
    """Issue 28, item 2: an instance forwarded a create command, the forward was acknowledged,
    and the instance went before committing the command's offset. The command is read again
    and forwarded again; one task is created, with the id drawn the first time."""
    group = f"policytrack-tasks-owners-{uuid.uuid4().hex[:8]}"
    first, second = partitioned_pair(service_factory, group)
    group = f"{group}-commands"  # the group that reads the command topic
    await split_between(first, second, kafka_settings.partitions)
    jilin = department_system(kafka, keys_dir, "JILIN", "u-jilin", "implementer")
    async with httpx.AsyncClient(base_url=first.url, timeout=30) as client:
        plan = (await client.post("/v1/plans", headers=SC, json={"title": "Plan"})).json()["id"]
    events, commands = await end_offsets(kafka_settings, EVENTS), await end_offsets(kafka_settings, COMMANDS)
    body = {
        "plan_id": plan,
        "title": "Trade",
        "field": "trade",
        "lead_department": "JILIN",
        "due": "2030-01-01T00:00:00Z",
    }

    async def forwarded_create() -> tuple[RecordMetadata, str, CloudEvent[Any]]:
        for _ in range(20):  # until an id is drawn that belongs to another partition than the record's
            correlation = f"forwarded-{uuid.uuid4().hex[:8]}"
            [sent] = await jilin.send(jilin.command("create_task", body, correlation=correlation), partition=0)
            [task] = await eventually(
                partial(task_created, kafka_settings, correlation, events), timeout=60, what="the task created"
            )
            if partition_for(task.subject, kafka_settings.partitions) != sent.partition:
                return sent, correlation, task
        raise AssertionError("twenty drawn ids all belonged to partition 0")

    sent, correlation, task = await forwarded_create()
    for instance in (first, second):
        instance.kill()
    where = TopicPartition(COMMANDS, sent.partition)
    await eventually(
        lambda: commit_at(kafka_settings, group, where, sent.offset), timeout=60, what="the offset set back"
    )
    for instance in (first, second):
        instance.start()

    async def read_again() -> bool:
        return bool(await committed(kafka_settings, group, where) > sent.offset)

    await eventually(read_again, timeout=90, what="the command read again after the restart")
    copies = await eventually(
        lambda: forwarded_copies(kafka_settings, correlation, commands), timeout=60, what="the command forwarded again"
    )
    assert len(copies) == 2, "forwarded once before the restart, once after"
    assert {dict(c.headers)[Forwarded.CREATED] for c in copies} == {task.subject.encode()}, "the same id both times"

    async def both_copies_handled() -> bool:
        return all(
            [await committed(kafka_settings, group, TopicPartition(COMMANDS, c.partition)) > c.offset for c in copies]
        )

    await eventually(both_copies_handled, timeout=60, what="the forwarded copies handled")
    assert [e.subject for e in await task_created(kafka_settings, correlation, events)] == [task.subject], "one task"
