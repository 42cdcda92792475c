"""Produce and consume N events through the real broker, twice in one run: with the project's
producer and consumer runner (envelope, validation, encoding, decoding) and with bare aiokafka
(the same records as pre-encoded bytes). Prints both rates and their ratio.

The project's consume is also measured in three other designs over the same records, alternating
with it (issue 31): with the decode into msgspec Structs (``bench.decode``'s prototype: the same
checks, no pydantic instance, the envelope as msgspec reads it); the runner and the writer's proof
with no decode at all (the floor that any decoder adds to); and the runner alone, with neither
(what the proof check costs).

    .venv/bin/python bench/kafka_throughput.py [--events 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from bench.common import Timed, bench_keys, bench_topic, fill, local_admin, stopwatch
from bench.decode import _structs_as_read, progress_report
from bench.results import Results, Row, scaled
from shared.contract.codec import DecodeFailure, decode_record, encode
from shared.contract.envelope import CloudEvent
from shared.kafka.connection import client_options
from shared.kafka.consumer import ConsumerRunner
from shared.kafka.producer import EventProducer
from shared.process import tune_interpreter
from shared.provenance.gate import ProofGate
from shared.provenance.keys import KeyFolder
from shared.settings import KafkaSettings


class Redirect:
    """Sends everything ``ConsumerRunner`` dead-letters nowhere; the bench has no poison."""

    async def dead_letter(self, failure: DecodeFailure, **_where: object) -> None:
        raise AssertionError(f"unexpected dead letter: {failure.reason}")


async def project_produce(kafka: KafkaSettings, keys: KeyFolder, topic: str, events: list[CloudEvent[Any]]) -> Timed:
    """The project's producer from validated CloudEvents (as the services hold them) to acks,
    each record with its writer's proof (a signature every hundred records of a partition)."""
    signing = keys.signing_key("tasks", create=True)
    async with EventProducer(kafka, client_id="bench-project", signing_key=signing) as producer:
        with stopwatch(Timed(len(events))) as timed:
            await fill(producer, topic, events)
    return timed


def build_events(count: int) -> tuple[list[CloudEvent[Any]], Timed]:
    """Making the events: payload and envelope validation, ids and times."""
    with stopwatch(Timed(count)) as timed:
        events = [progress_report(n) for n in range(count)]
    return events, timed


async def bare_produce(kafka: KafkaSettings, topic: str, records: list[Any]) -> Timed:
    producer = AIOKafkaProducer(
        **client_options(kafka),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    try:
        with stopwatch(Timed(len(records))) as timed:
            futures = [await producer.send(topic, value, key=key, headers=headers) for key, value, headers in records]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return timed


class _Read(msgspec.Struct, frozen=True):
    """What the other designs hand the handler: the runner reads an event's ids for its log lines,
    and a missing attribute would cost it an exception a record."""

    id: str | None
    correlationid: str | None
    data: object = None


_NOTHING_READ = _Read(None, None)


def _no_decode(_record: ConsumerRecord) -> object:
    return _NOTHING_READ


def _into_structs(record: ConsumerRecord) -> object:
    envelope, _, _, data = _structs_as_read(record.key, record.value, tuple(record.headers))
    return _Read(envelope.id, envelope.correlationid, data)


@dataclass(frozen=True)
class ConsumeDesign:
    """How the project's consumer runner reads in one design: its decoder, and whether it checks
    the writer's proof."""

    decode: Callable[[ConsumerRecord], object]
    proofs: bool = True
    label: str = ""


CONSUME_DESIGNS = {
    "project consume": ConsumeDesign(decode_record),  # as every service reads
    "proof, Structs": ConsumeDesign(
        _into_structs, label="the runner, the proof check and a decode into Structs, the envelope as read (prototype)"
    ),
    "proof, no decode": ConsumeDesign(_no_decode, label="the runner and the proof check alone (no decode)"),
    "runner alone": ConsumeDesign(_no_decode, proofs=False, label="the runner alone (no proof check, no decode)"),
}


async def project_consume(
    kafka: KafkaSettings, keys: KeyFolder, topic: str, count: int, design: ConsumeDesign
) -> Timed:
    """The project's consumer runner: each record's proof checked, then decoded and validated
    (as the services read, or in another ``design``)."""
    done = asyncio.Event()
    seen = 0

    async def count_event(_event: object, _record: object) -> None:
        nonlocal seen
        seen += 1
        if seen >= count:
            done.set()

    runner = ConsumerRunner(
        kafka,
        name="bench-project",
        topics=[topic],
        handler=count_event,
        dead_letters=Redirect(),
        group_id=f"bench-{uuid.uuid4().hex[:8]}",
        max_records=2000,
        proofs=ProofGate(keys.trust(), {topic: {"tasks"}}) if design.proofs else None,
        decode=design.decode,
    )
    await runner.start()
    with stopwatch(Timed(count)) as timed:
        task = asyncio.create_task(runner.run())
        await done.wait()
    runner.stop()
    await task
    return timed


async def bare_consume(kafka: KafkaSettings, topic: str, count: int) -> Timed:
    consumer = AIOKafkaConsumer(
        topic,
        **client_options(kafka),
        group_id=f"bench-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    seen = 0
    try:
        with stopwatch(Timed(count)) as timed:
            while seen < count:
                batch = await consumer.getmany(timeout_ms=200, max_records=2000)
                for partition, records in batch.items():
                    seen += len(records)
                    await consumer.commit({partition: records[-1].offset + 1})
    finally:
        await consumer.stop()
    return timed


async def main(count: int, rounds: int) -> None:
    kafka = local_admin()
    keys = bench_keys()
    events, built = build_events(count)
    raw = [(r.key, r.value, list(r.headers)) for r in map(encode, events)]
    size = sum(len(value or b"") + sum(len(k) + len(v or b"") for k, v in headers) for _, value, headers in raw) / count
    print(
        f"{count:,} events of ~{size:.0f} bytes (value + headers), broker {kafka.bootstrap_servers}, "
        f"best of {rounds} alternating rounds"
    )
    best = {name: Timed() for name in ("project produce", "bare produce", "bare consume", *CONSUME_DESIGNS)}

    def keep(name: str, timed: Timed) -> None:
        print(f"  {name:<16}{timed.rate:>10,.0f}/s")
        if timed.rate > best[name].rate:
            best[name] = timed

    for round_ in range(rounds):
        # Alternate which path goes first, so neither always meets a cold broker or a warm cache.
        order = ("bare", "project") if round_ % 2 == 0 else ("project", "bare")
        async with bench_topic(kafka) as project_topic, bench_topic(kafka) as bare_topic:
            for path in order:
                if path == "bare":
                    keep("bare produce", await bare_produce(kafka, bare_topic, raw))
                else:
                    keep("project produce", await project_produce(kafka, keys, project_topic, events))
            for path in order:
                if path == "bare":
                    keep("bare consume", await bare_consume(kafka, bare_topic, count))
                else:
                    designs = list(CONSUME_DESIGNS.items())
                    for name, design in designs if round_ % 2 == 0 else designs[::-1]:
                        keep(name, await project_consume(kafka, keys, project_topic, count, design))
    results = Results("kafka_throughput")
    print("\nKafka throughput, events/s (the project's path against bare aiokafka, same records)")
    produce, bare_produce_ = best["project produce"], best["bare produce"]
    consume, bare_consume_ = best["project consume"], best["bare consume"]
    results.add(
        Row(
            "produce with proof, acks=all vs bare aiokafka",
            produce.rate,
            "ev/s",
            bare_produce_.rate,
            0.5,
        )
    )
    results.add(
        Row(
            "consume with proof check + decode vs bare aiokafka",
            consume.rate,
            "ev/s",
            bare_consume_.rate,
            0.6,
        )
    )
    for name, design in CONSUME_DESIGNS.items():
        if design.label:
            what = f"consume, other design: {design.label} vs bare aiokafka"
            results.add(Row(what, best[name].rate, "ev/s", bare_consume_.rate))
    both = 1 / (1 / built.rate + 1 / produce.rate)
    results.add(Row("building (validation) and producing together vs bare produce", both, "ev/s", bare_produce_.rate))
    results.note(f"{count:,} events of ~{size:.0f} bytes, best of {rounds} alternating rounds")
    results.save()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=scaled(200_000, 30_000))
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    tune_interpreter()  # as the services do; it applies to both paths
    asyncio.run(main(args.events, args.rounds))
