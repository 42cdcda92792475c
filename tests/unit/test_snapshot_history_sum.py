"""A long history's seal is checked in processes of their own at restore: the same sum as the
one pass, so a snapshot restores the same and a changed or removed row is still caught."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.tasks.adapters.history import Written
from services.tasks.adapters.snapshots import Cut, SnapshotStore
from shared.contract import catalog as c
from shared.contract.codec import to_structured
from shared.contract.codes import CooperationField
from shared.contract.envelope import AnyEvent, new_event
from shared.kafka.snapshots import Claim
from shared.provenance.keys import KeyFolder
from shared.provenance.sealing import SealBroken, SnapshotSeal, xor

DUE = datetime(2027, 6, 30, tzinfo=UTC)


def history(tasks: int, reports: int) -> dict[str, list[Written]]:
    kept: dict[str, list[Written]] = {}
    for t in range(tasks):
        task_id = f"task-{t}"
        created = c.TaskCreated(task_id=task_id, plan_id="p", title="Port", field=CooperationField.TRADE, due=DUE)
        events: list[AnyEvent] = [new_event(created, actor="u-sc", aggregateversion=1)]
        events += [
            new_event(c.TaskProgressReported(task_id=task_id, percent=n, note="weekly"), actor="u", aggregateversion=n)
            for n in range(2, reports + 2)
        ]
        kept[task_id] = [Written(event.id, to_structured(event)) for event in events]
    return kept


def saved(tmp_path: Path, shared_from: int) -> tuple[SnapshotStore, Claim, SnapshotSeal]:
    seal = SnapshotSeal(KeyFolder(tmp_path / "keys").signing_key("tasks", create=True))
    store = SnapshotStore(tmp_path / "tasks.snapshot.sqlite", seal, history_shared_from=shared_from)
    events = history(tasks=7, reports=30)
    store.save(
        Cut(
            positions={0: (217, events["task-6"][-1].id)},
            topic="policy.events",
            aggregates=[],
            answers=[],
            history=events,
            last_event_time=None,
            plan_evaluated={},
            events_taken=217,
        )
    )
    claim = store.claim()
    assert isinstance(claim, Claim)
    return store, claim, seal


@pytest.mark.parametrize("shared_from", [0, 2**40], ids=["in-two-processes", "in-one-pass"])
def test_a_long_history_restores_the_same_and_a_changed_row_is_caught(tmp_path: Path, shared_from: int) -> None:
    store, claim, _ = saved(tmp_path, shared_from)
    view = store.restore(claim)
    assert len(store.events_about("task-3")) == 31
    assert view.positions.offset(0) == 217

    with closing(sqlite3.connect(store.path)) as db, db:
        db.execute("UPDATE history SET event = CAST(replace(CAST(event AS TEXT), 'weekly', 'weakly') AS BLOB)")
    with pytest.raises(SealBroken, match="not the rows it sealed"):
        store.restore(claim)


@pytest.mark.parametrize("shared_from", [0, 2**40], ids=["in-two-processes", "in-one-pass"])
def test_a_removed_history_row_is_caught(tmp_path: Path, shared_from: int) -> None:
    store, claim, _ = saved(tmp_path, shared_from)
    with closing(sqlite3.connect(store.path)) as db, db:
        db.execute("DELETE FROM history WHERE event_id = (SELECT max(event_id) FROM history)")
    with pytest.raises(SealBroken, match="not the rows it sealed"):
        store.restore(claim)


def test_the_shares_add_up_to_the_one_pass(tmp_path: Path) -> None:
    store, _, seal = saved(tmp_path, shared_from=2**40)
    columns = ("task_id", "event_id", "event")
    with closing(sqlite3.connect(store.path)) as db:
        one_pass = xor(seal.row("history", *row) for row in db.execute("SELECT task_id, event_id, event FROM history"))
    for shares in (1, 2, 3):
        assert seal.table_sum(store.path, "history", columns, "event_id", shares) == one_pass
