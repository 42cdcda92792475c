"""The tasks rebuild in two designs over the same records of one partition, in one process,
alternating (issue 31, items 1 and 2): today's (pydantic events through the envelope's mirror,
pydantic states) and a prototype in which progress reports are decoded into msgspec Structs
with their model's checks (the envelope as msgspec reads it) and every task's state is a Struct.
Both read the log through the same consumer and writer's-proof gate, keep each event's record in
its task's history and move the view's positions; the prototype's states must equal today's.
Other event types (two in a hundred here) go through today's decoder and ``evolve`` in the
prototype. Prints, does not save: the prototype is a measurement of a design, not the service's
code.

    .venv/bin/python -m bench.rebuild_designs [--events 300000] [--rounds 3]   (on `make broker`)
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import msgspec
from aiokafka import ConsumerRecord

from bench.common import bench_keys, bench_topic, local_admin
from bench.decode import _fold_struct, _progress_as_read, _TaskStruct
from bench.results import scaled
from bench.tasks_service import _write
from services.tasks.adapters.history import Written
from services.tasks.adapters.rebuild import RebuildReport, read_after, read_to_ends, rebuild
from services.tasks.application.view import LogPositions, LogView, Placement
from shared.contract.catalog import TaskProgressReported
from shared.contract.codec import _as_written, _checked, _envelope_problem, _read_headers
from shared.contract.envelope import CloudEvent
from shared.domain.evolve import evolve
from shared.domain.state import Task
from shared.kafka.consumer import offsets_of, open_consumer
from shared.kafka.producer import EventProducer
from shared.process import tune_interpreter
from shared.provenance.gate import ProofGate
from shared.provenance.keys import TrustStore
from shared.settings import KafkaSettings

PROGRESS = TaskProgressReported.event_type


@dataclass
class StructView:
    """What the prototype keeps: the states, each task's recent records, the positions."""

    positions: LogPositions
    states: dict[str, Any]
    recent: dict[str, list[Written]]
    last_event_time: datetime | None = None


def take_struct(view: StructView, record: ConsumerRecord[bytes, bytes], report: RebuildReport) -> None:
    attributes, problem = _read_headers(tuple(record.headers))
    value = record.value or b""
    if problem or _envelope_problem(attributes, record.value):
        report.skipped += 1
        return
    if attributes["type"] == PROGRESS:
        try:
            envelope, version, moment, data = _progress_as_read(record.key, value, attributes)
        except ValueError:
            report.skipped += 1
            return
        _fold_struct(view.states, data.task_id, version, moment, data)
        event_id, task_id = envelope.id, data.task_id
    else:
        event = _checked(record.key, value, attributes)
        assert isinstance(event, CloudEvent), event
        current = view.states.get(event.subject)
        state = None if current is None else Task.model_construct(**msgspec.structs.asdict(current))
        view.states[event.subject] = _TaskStruct(**dict(evolve(state, event)))
        event_id, task_id, version, moment = event.id, event.subject, event.aggregateversion, event.time
    view.last_event_time = moment if view.last_event_time is None else max(view.last_event_time, moment)
    view.positions.took(Placement(record.topic, record.partition, record.offset), event_id)
    view.recent.setdefault(task_id, []).append(Written(event_id, _as_written(attributes, value, version)))
    report.events += 1


async def rebuild_with_structs(
    kafka: KafkaSettings, topic: str, trust: TrustStore, writers: Mapping[str, Collection[str]]
) -> tuple[StructView, RebuildReport]:
    """The prototype's rebuild, through the rebuild's own loop."""
    view, report = StructView(LogPositions(topic), {}, {}), RebuildReport()
    async with open_consumer(kafka, client_id="bench-structs", fetch_bytes=8 * 1024 * 1024) as consumer:
        every = await read_after(consumer, LogView(positions=LogPositions(topic)))
        ends = await offsets_of(consumer, every)
        await read_to_ends(consumer, ProofGate(trust, writers), ends, set(every), report, partial(take_struct, view))
    return view, report


def told(states: Mapping[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {
        task_id: (s.version, s.updated_at, s.percent, s.lead_department, [(p.at, p.percent) for p in s.recent_progress])
        for task_id, s in states.items()
    }


async def main(events: int, rounds: int) -> None:
    kafka = local_admin()
    keys = bench_keys()
    signing = keys.signing_key("tasks", create=True)
    trust = keys.trust()
    async with (
        bench_topic(kafka, partitions=1) as topic,
        EventProducer(kafka, client_id="bench-designs-writer", signing_key=signing) as producer,
    ):
        await _write(producer, topic, events // 100, range(1, 101))
        writers = {topic: {"tasks"}}
        print(f"rebuilding {events:,} events of one partition in one process, two designs alternating:")
        best: dict[str, float] = {}
        for round_ in range(1, rounds + 1):
            for design in ("today", "structs"):
                wall, cpu = time.perf_counter(), time.process_time()
                if design == "today":
                    view = LogView(positions=LogPositions(topic))
                    report = await rebuild(kafka, view, trust, writers, in_parts_from=None)
                    expected = told(view.projection.aggregates)
                else:
                    prototype, report = await rebuild_with_structs(kafka, topic, trust, writers)
                    assert told(prototype.states) == expected, "the designs disagree"
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                assert report.events == events, report
                rate = events / wall
                best[design] = max(best.get(design, 0.0), rate)
                print(
                    f"  round {round_}, {design:8} {rate:10,.0f} events/s  {cpu / events * 1e6:6.1f} µs of CPU an event"
                )
        print(f"best of each: today {best['today']:,.0f}, structs {best['structs']:,.0f} events/s: ", end="")
        print(f"{best['structs'] / best['today']:.2f}x  ({datetime.now(UTC):%H:%M} UTC)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=scaled(300_000, 30_000))
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    tune_interpreter()
    asyncio.run(main(arguments.events, arguments.rounds))
