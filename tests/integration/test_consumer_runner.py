"""The consumer runner against the real broker: at-least-once, dead letters, clean shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition

from shared.contract.catalog import TaskProgressReported
from shared.contract.codec import encode
from shared.contract.codes import Department
from shared.contract.envelope import CloudEvent, new_event
from shared.contract.topics import DEADLETTER
from shared.kafka.connection import client_options
from shared.kafka.consumer import ConsumerRunner, open_consumer, run_until_signalled
from shared.kafka.producer import EventProducer
from shared.provenance.keys import SigningKey
from shared.settings import KafkaSettings
from tests.conftest import end_offsets, eventually, read_from, resolved, scratch_gate


def progress(task_id: str, percent: int) -> CloudEvent[Any]:
    return new_event(TaskProgressReported(task_id=task_id, percent=percent), actor="u-test", actordept=Department.JILIN)


async def produce_raw(settings: KafkaSettings, topic: str, key: bytes, value: bytes, headers: list[Any]) -> None:
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key, headers=headers, partition=0)
    finally:
        await producer.stop()


async def publish_to(producer: EventProducer, topic: str, event: CloudEvent[Any]) -> None:
    await (await producer.enqueue(event, topic=topic, partition=0))


def scratch_runner(
    kafka_settings: KafkaSettings,
    topic: str,
    keys_dir: Path,
    handler: Callable[[CloudEvent[Any], ConsumerRecord], Awaitable[None]],
    producer: EventProducer,
    **options: Any,
) -> ConsumerRunner[CloudEvent[Any]]:
    """A runner of the test's own topic whose writer is the tasks service; dead letters go
    through ``producer``."""
    return ConsumerRunner(
        kafka_settings,
        topics=[topic],
        handler=handler,
        dead_letters=producer,
        proofs=scratch_gate(keys_dir, topic),
        **options,
    )


async def committed(settings: KafkaSettings, group: str, partition: TopicPartition) -> int | None:
    async with open_consumer(settings, group_id=group) as consumer:
        offset: int | None = await consumer.committed(partition)
        return offset


async def test_poison_record_is_dead_lettered_and_the_next_good_record_is_handled(
    kafka_settings: KafkaSettings, scratch_topic: str, tasks_key: SigningKey, tmp_path: Path, keys_dir: Path
) -> None:
    dead_letter_starts = await end_offsets(kafka_settings, DEADLETTER)
    poison = f"not an event {uuid.uuid4()}".encode()
    good_before, good_after = progress("t-a", 10), progress("t-a", 20)
    handled: list[CloudEvent[Any]] = []

    async def handler(event: CloudEvent[Any], _record: ConsumerRecord) -> None:
        handled.append(event)

    async with EventProducer(kafka_settings, client_id="test-poison", signing_key=tasks_key) as producer:
        await publish_to(producer, scratch_topic, good_before)
        # Its writer's own record, but not an event: poison, not a forgery.
        await producer.send(scratch_topic, poison, key=b"t-a", headers=[("ce_specversion", b"1.0")], partition=0)
        await publish_to(producer, scratch_topic, good_after)
        group = f"test-{uuid.uuid4().hex[:8]}"
        runner = scratch_runner(
            kafka_settings, scratch_topic, keys_dir, handler, producer, name="test-poison", group_id=group
        )
        task = asyncio.create_task(runner.run())
        try:
            await eventually(lambda: resolved(len(handled) == 2), what="both good records handled")
        finally:
            runner.stop()
            await task

    assert [e.id for e in handled] == [good_before.id, good_after.id]
    assert await committed(kafka_settings, group, TopicPartition(scratch_topic, 0)) == 3

    def found(records: list[Any]) -> bool:
        return any(r.value == poison for r in records)

    letters = [r for r in await read_from(kafka_settings, dead_letter_starts, until=found) if r.value == poison]
    assert len(letters) == 1
    headers = dict(letters[0].headers)
    assert b"unknown event type" in headers["dlq_reason"]
    assert headers["dlq_topic"] == scratch_topic.encode()
    assert headers["dlq_offset"] == b"1"
    assert headers["ce_specversion"] == b"1.0", "the original headers travel with the dead letter"


async def test_a_record_its_writer_did_not_write_is_never_handled_and_never_stops_the_loop(
    kafka_settings: KafkaSettings, scratch_topic: str, tasks_key: SigningKey, tmp_path: Path, keys_dir: Path
) -> None:
    dead_letter_starts = await end_offsets(kafka_settings, DEADLETTER)
    genuine, later = progress("t-f", 10), progress("t-f", 20)
    forged = progress("t-f", 99)
    handled: list[str] = []

    async def handler(event: CloudEvent[Any], _record: ConsumerRecord) -> None:
        handled.append(event.id)

    async with EventProducer(kafka_settings, client_id="test-forged", signing_key=tasks_key) as producer:
        await publish_to(producer, scratch_topic, genuine)
        record = encode(forged)
        await produce_raw(kafka_settings, scratch_topic, record.key, record.value, list(record.headers))
        await publish_to(producer, scratch_topic, later)
        group = f"test-{uuid.uuid4().hex[:8]}"
        runner = scratch_runner(
            kafka_settings, scratch_topic, keys_dir, handler, producer, name="test-forged", group_id=group
        )
        task = asyncio.create_task(runner.run())
        try:
            await eventually(lambda: resolved(later.id in handled), what="the record after the forgery handled")
        finally:
            runner.stop()
            await task
    assert handled == [genuine.id, later.id], "a well-formed event without its writer's proof is not handled"
    assert await committed(kafka_settings, group, TopicPartition(scratch_topic, 0)) == 3
    letters = await read_from(kafka_settings, dead_letter_starts, until=lambda rs: False, timeout=1)
    assert not [r for r in letters if dict(r.headers).get("ce_id") == forged.id.encode()], "refused, not poison"


async def test_a_handler_that_keeps_failing_is_dead_lettered_and_a_flaky_one_is_retried(
    kafka_settings: KafkaSettings, scratch_topic: str, tasks_key: SigningKey, tmp_path: Path, keys_dir: Path
) -> None:
    dead_letter_starts = await end_offsets(kafka_settings, DEADLETTER)
    doomed, flaky, fine = progress("t-b", 1), progress("t-b", 2), progress("t-b", 3)
    attempts: dict[str, int] = {}
    handled: list[str] = []

    async def handler(event: CloudEvent[Any], _record: ConsumerRecord) -> None:
        attempts[event.id] = attempts.get(event.id, 0) + 1
        if event.id == doomed.id or (event.id == flaky.id and attempts[event.id] < 3):
            raise RuntimeError("store unavailable")
        handled.append(event.id)

    async with EventProducer(kafka_settings, client_id="test-failing", signing_key=tasks_key) as producer:
        for event in (doomed, flaky, fine):
            await publish_to(producer, scratch_topic, event)
        runner = scratch_runner(
            kafka_settings,
            scratch_topic,
            keys_dir,
            handler,
            producer,
            name="test-failing",
            group_id=f"test-{uuid.uuid4().hex[:8]}",
            max_attempts=4,
            retry_backoff=0.01,
        )
        task = asyncio.create_task(runner.run())
        try:
            await eventually(lambda: resolved(fine.id in handled), what="the last record handled")
        finally:
            runner.stop()
            await task

    assert handled == [flaky.id, fine.id]
    assert attempts == {doomed.id: 4, flaky.id: 3, fine.id: 1}
    records = await read_from(
        kafka_settings,
        dead_letter_starts,
        until=lambda rs: any(dict(r.headers).get("ce_id") == doomed.id.encode() for r in rs),
    )
    letter = next(r for r in records if dict(r.headers).get("ce_id") == doomed.id.encode())
    assert b"handler failed after 4 attempts" in dict(letter.headers)["dlq_reason"]


async def test_sigterm_stops_the_loop_after_committing_what_was_handled(
    kafka_settings: KafkaSettings, scratch_topic: str, tasks_key: SigningKey, tmp_path: Path, keys_dir: Path
) -> None:
    events = [progress("t-c", n) for n in range(5)]
    handled: list[str] = []

    async def handler(event: CloudEvent[Any], _record: ConsumerRecord) -> None:
        handled.append(event.id)
        if len(handled) == len(events):
            os.kill(os.getpid(), signal.SIGTERM)

    group = f"test-{uuid.uuid4().hex[:8]}"
    async with EventProducer(kafka_settings, client_id="test-sigterm", signing_key=tasks_key) as producer:
        for event in events:
            await publish_to(producer, scratch_topic, event)
        runner = scratch_runner(
            kafka_settings, scratch_topic, keys_dir, handler, producer, name="test-sigterm", group_id=group
        )
        await asyncio.wait_for(run_until_signalled(runner), timeout=60)

    assert handled == [e.id for e in events]
    assert await committed(kafka_settings, group, TopicPartition(scratch_topic, 0)) == len(events)


async def test_a_restarted_group_member_goes_on_where_the_last_one_committed(
    kafka_settings: KafkaSettings, scratch_topic: str, tasks_key: SigningKey, tmp_path: Path, keys_dir: Path
) -> None:
    first, second = progress("t-d", 1), progress("t-d", 2)
    group = f"test-{uuid.uuid4().hex[:8]}"
    seen: list[str] = []

    async def handler(event: CloudEvent[Any], _record: ConsumerRecord) -> None:
        seen.append(event.id)

    async with EventProducer(kafka_settings, client_id="test-resume", signing_key=tasks_key) as producer:
        for event in (first, second):
            await publish_to(producer, scratch_topic, event)
            runner = scratch_runner(
                kafka_settings, scratch_topic, keys_dir, handler, producer, name="test-resume", group_id=group
            )
            task = asyncio.create_task(runner.run())

            async def handled(wanted: str = event.id) -> bool:
                return wanted in seen

            await eventually(handled, what="record handled")
            runner.stop()
            await task
    assert seen == [first.id, second.id]


async def test_catching_up_lets_the_rest_of_the_service_run_between_batches(
    kafka_settings: KafkaSettings, scratch_topic: str, tasks_key: SigningKey, tmp_path: Path, keys_dir: Path
) -> None:
    """Found by the webhook benchmark: buffered records come back from getmany without a
    suspension, so a runner catching up held the event loop through every batch it had."""
    events = [progress("t-e", n % 101) for n in range(600)]
    loop_turns = 0
    turn_of_each: list[int] = []

    async def other_work() -> None:
        nonlocal loop_turns
        while True:
            loop_turns += 1
            await asyncio.sleep(0)

    async def handler(_event: CloudEvent[Any], _record: ConsumerRecord) -> None:
        turn_of_each.append(loop_turns)  # nothing to wait for, as when alerts are read back

    async with EventProducer(kafka_settings, client_id="test-fair", signing_key=tasks_key) as producer:
        await asyncio.gather(*[await producer.enqueue(event, topic=scratch_topic, partition=0) for event in events])
        runner = scratch_runner(
            kafka_settings,
            scratch_topic,
            keys_dir,
            handler,
            producer,
            name="test-fair",
            group_id=None,  # as the notifications service reads: no commit to wait for either
            max_records=50,
        )
        task = asyncio.create_task(runner.run())
        ticking = asyncio.create_task(other_work())
        try:
            await eventually(lambda: resolved(len(turn_of_each) == len(events)), what="every record handled")
        finally:
            runner.stop()
            ticking.cancel()
            await task
    # At most 50 records a batch: at least twelve batches, with other work between each two.
    assert len(set(turn_of_each)) >= len(events) // 50, sorted(set(turn_of_each))
