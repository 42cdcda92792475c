"""A rebuild read in parts, a partition a process: the views of the parts taken into one are
the view one reader of the whole log makes (states, positions, answers, history, and a
snapshot of it), and what crosses between processes is plain bytes and data."""

from __future__ import annotations

import pickle
import zlib
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from services.tasks.adapters import rebuild
from services.tasks.adapters.history import Written
from services.tasks.adapters.snapshots import SnapshotStore, cut
from services.tasks.application.view import LogView, Placement
from shared.contract import catalog as c
from shared.contract.envelope import AnyEvent
from shared.provenance.keys import KeyFolder
from shared.provenance.sealing import SnapshotSeal
from tests.samples import plan_log

PARTITIONS = 3


def partition_of(event: AnyEvent) -> int:
    return zlib.crc32(event.subject.encode()) % PARTITIONS


def placed(events: list[AnyEvent]) -> list[tuple[AnyEvent, Placement]]:
    offsets = dict.fromkeys(range(PARTITIONS), 0)
    out = []
    for event in events:
        partition = partition_of(event)
        out.append((event, Placement("policy.events", partition, offsets[partition])))
        offsets[partition] += 1
    return out


def read_whole(log: list[tuple[AnyEvent, Placement]]) -> LogView:
    view = LogView()
    for event, where in log:
        view.take(event, where)
    return view


def read_in_parts(log: list[tuple[AnyEvent, Placement]]) -> LogView:
    views = [LogView() for _ in range(PARTITIONS)]
    for event, where in log:
        views[where.partition].take(event, where)
    whole = views[0]
    for other in views[1:]:
        # As a process of its own hands its part over.
        whole.extend(pickle.loads(pickle.dumps(other.part())))
    return whole


async def test_the_parts_taken_into_one_view_are_the_view_of_the_whole_log() -> None:
    log = placed(plan_log())
    assert len({where.partition for _, where in log}) == PARTITIONS
    whole, parts = read_whole(log), read_in_parts(log)

    assert parts.projection.aggregates == whole.projection.aggregates
    assert parts.projection.changed == whole.projection.changed
    assert parts.projection.last_event_time == whole.projection.last_event_time
    assert parts.projection.plan_evaluated == whole.projection.plan_evaluated == {"plan-1": log[-1][0].time}
    assert parts.positions.next == whole.positions.next
    assert parts.events_taken == whole.events_taken == len(log)
    assert parts.index.answers() == whole.index.answers()
    assert parts.index.changed == whole.index.changed
    for t in range(6):
        history = await parts.history.of(f"task-{t}")
        assert history == await whole.history.of(f"task-{t}")
        assert len(history) == 6  # created, its issue reported, four reports


async def test_history_is_kept_as_bytes_and_read_back_as_the_events_taken() -> None:
    view = LogView()
    log = placed(plan_log())
    for event, where in log:
        view.take(event, where)
    assert all(isinstance(kept, Written) for recent in view.history.recent.values() for kept in recent)
    for t in range(6):
        taken = [event for event, _ in log if f"task-{t}" in (event.subject, getattr(event.data, "task_id", None))]
        assert await view.history.of(f"task-{t}") == taken


async def test_a_snapshot_of_a_view_read_in_parts_keeps_every_event(tmp_path: Path) -> None:
    log = placed(plan_log())
    parts = read_in_parts(log)
    seal = SnapshotSeal(KeyFolder(tmp_path / "keys").signing_key("tasks", create=True))
    store = SnapshotStore(tmp_path / "tasks.snapshot.sqlite", seal)
    taken = cut(parts)
    store.save(taken)
    parts.history.forget(taken.history)
    assert parts.history.recent == {}
    parts.history.archive = store
    whole = read_whole(log)
    for t in range(6):
        assert await parts.history.of(f"task-{t}") == await whole.history.of(f"task-{t}")


def test_partitions_are_shared_among_one_more_process_than_there_are_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("services.tasks.adapters.rebuild.cores", lambda: 2)
    ends = {TopicPartition("policy.events", p): 100_000 for p in range(6)}
    assert rebuild._in_parts(LogView(), ends, 200_000) == [[0, 3], [1, 4], [2, 5]]
    three = {tp: end for tp, end in ends.items() if tp.partition < 3}
    assert rebuild._in_parts(LogView(), three, 200_000) == [[0], [1], [2]]
    assert rebuild._in_parts(LogView(), three, 300_001) == [], "too few records to be worth the processes"
    assert rebuild._in_parts(LogView(), three, None) == []
    started = LogView()
    started.take(plan_log()[0], Placement("policy.events", 0, 0))
    assert rebuild._in_parts(started, three, 200_000) == [], "only an empty view is read in parts"


def test_a_plan_s_last_evaluation_is_its_latest_whatever_order_the_partitions_are_read_in() -> None:
    evaluations = [event for event in plan_log() if isinstance(event.data, c.EvaluationRecorded)]
    latest = max(event.time for event in evaluations)
    view = LogView()
    # A reader of several partitions may take a later evaluation before an earlier one.
    for n, event in enumerate(reversed(evaluations)):
        view.take(event, Placement("policy.events", n % PARTITIONS, n))
    assert view.projection.last_plan_evaluation("plan-1") == latest
    assert view.projection.last_event_time == latest
