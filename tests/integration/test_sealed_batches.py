"""A writer outside a transaction sends what it appends together as record batches, each closed
by one signature, and every record of them is still its writer's to a reader, on the real broker."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from shared.contract.catalog import TaskProgressReported
from shared.contract.codes import Department
from shared.contract.envelope import CloudEvent, new_event
from shared.kafka.producer import BATCH_BYTES, EventProducer
from shared.provenance.keys import SigningKey
from shared.provenance.seals import PROOF_HEADER, Proof
from shared.settings import KafkaSettings
from tests.conftest import read_from, scratch_gate


def progress(task_id: str, note: str) -> CloudEvent[Any]:
    data = TaskProgressReported(task_id=task_id, percent=5, note=note)
    return new_event(data, actor="u-test", actordept=Department.JILIN)


def proof_of(record: Any) -> Proof:
    name, raw = record.headers[-1]
    assert name == PROOF_HEADER
    proof = Proof.parse(raw)
    assert proof is not None
    return proof


async def appended_together(settings: KafkaSettings, key: SigningKey, topic: str, events: list[Any]) -> list[Any]:
    """The events appended in one turn of the loop, as read back from the log."""
    async with EventProducer(settings, client_id="test-sealed-batches", signing_key=key) as producer:
        appended = [await producer.enqueue(event, topic=topic, partition=0) for event in events]
        offsets = [metadata.offset for metadata in await asyncio.gather(*appended)]
    assert offsets == list(range(offsets[0], offsets[0] + len(events))), "in order, one after another"
    start = {TopicPartition(topic, 0): offsets[0]}
    return await read_from(settings, start, until=lambda records: len(records) >= len(events))


async def test_records_appended_together_carry_a_signature_a_batch_and_are_all_their_writers(
    kafka_settings: KafkaSettings, scratch_topic: str, tasks_key: SigningKey, keys_dir: Path
) -> None:
    events = [progress(f"t-{n % 7}", "进展" * 500) for n in range(600)]  # ~3.3 kB a record: 2 MB
    records = await appended_together(kafka_settings, tasks_key, scratch_topic, events)

    assert [record.value for record in records] == [
        event.data.__pydantic_serializer__.to_json(event.data) for event in events
    ]
    signed = [i for i, record in enumerate(records) if proof_of(record).signature is not None]
    whole = sum(len(record.value) + sum(len(v or b"") for _, v in record.headers) for record in records)
    assert signed[-1] == len(records) - 1, "the last record appended closes its chain"
    assert math.ceil(whole / BATCH_BYTES) <= len(signed) <= 2 * math.ceil(whole / BATCH_BYTES), signed
    verdicts = scratch_gate(keys_dir, scratch_topic).admit(records, complete=True)
    assert len(verdicts) == len(records)
    assert all(verdict.ok and verdict.writer == "tasks" and not verdict.gap for _, verdict in verdicts)


async def test_a_record_larger_than_a_batch_goes_in_one_of_its_own(
    kafka_settings: KafkaSettings, scratch_topic: str, tasks_key: SigningKey, keys_dir: Path
) -> None:
    # 300 kB of UTF-8, over the 256 kB of a batch (and the 20,000 characters a note may have:
    # the writer is given records as they come, not checked again)
    large = TaskProgressReported.model_construct(task_id="t-1", percent=5, note="大" * 100_000, evidence=())
    events = [progress("t-1", "small"), new_event(large, actor="u-test"), progress("t-1", "small again")]
    records = await appended_together(kafka_settings, tasks_key, scratch_topic, events)

    assert [proof_of(record).signature is not None for record in records] == [True, True, True]
    verdicts = scratch_gate(keys_dir, scratch_topic).admit(records, complete=True)
    assert [verdict.ok for _, verdict in verdicts] == [True, True, True]
