"""A long history's seal is checked in processes of their own at restore: the same sum as the
one pass, so a snapshot restores the same and a changed or removed row is still caught."""

from __future__ import annotations

import functools
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
from shared.domain.evolve import evolve
from shared.domain.state import Aggregate
from shared.kafka.snapshots import Claim
from shared.provenance.keys import KeyFolder
from shared.provenance.sealing import SealBroken, SnapshotSeal, xor

DUE = datetime(2027, 6, 30, tzinfo=UTC)


def history(tasks: int, reports: int) -> tuple[dict[str, list[Written]], list[tuple[str, Aggregate]]]:
    """The tasks' kept history, and their states (which the restore cuts the history's key by)."""
    kept: dict[str, list[Written]] = {}
    states: list[tuple[str, Aggregate]] = []
    for t in range(tasks):
        task_id = f"task-{t}"
        created = c.TaskCreated(task_id=task_id, plan_id="p", title="Port", field=CooperationField.TRADE, due=DUE)
        events: list[AnyEvent] = [new_event(created, actor="u-sc", aggregateversion=1)]
        events += [
            new_event(c.TaskProgressReported(task_id=task_id, percent=n, note="weekly"), actor="u", aggregateversion=n)
            for n in range(2, reports + 2)
        ]
        kept[task_id] = [Written(event.id, to_structured(event)) for event in events]
        task = evolve(None, events[0])
        states.append((task_id, functools.reduce(evolve, events[1:], task)))
    return kept, states


def saved(tmp_path: Path, shared_from: int) -> tuple[SnapshotStore, Claim, SnapshotSeal]:
    seal = SnapshotSeal(KeyFolder(tmp_path / "keys").signing_key("tasks", create=True))
    store = SnapshotStore(tmp_path / "tasks.snapshot.sqlite", seal, history_shared_from=shared_from)
    events, states = history(tasks=7, reports=30)
    store.save(
        Cut(
            positions={0: (217, events["task-6"][-1].id)},
            topic="policy.events",
            aggregates=states,
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
    for cuts in ([], ["task-3"], ["task-5", "task-2"], ["task-2", "task-2", "zzz"], ["", "a"]):
        assert seal.table_sum(store.path, "history", columns, "task_id", cuts) == one_pass, cuts


def test_every_row_is_in_one_share_whatever_its_key(tmp_path: Path) -> None:
    """The shares are ranges of the key: a key that sorts before every task's, after them, or
    is no text at all (a file written by hand can hold one) is still summed, once."""
    store, _, seal = saved(tmp_path, shared_from=2**40)
    with closing(sqlite3.connect(store.path)) as db, db:
        odd = [("", "e1", b"a"), ("\U0010ffff", "e2", b"b"), (7, "e3", b"c"), (b"\x00", "e4", b"d"), (None, "e5", b"e")]
        db.execute("CREATE TABLE loose (task_id, event_id, event)")  # no constraints, as a forged file may be
        db.executemany("INSERT INTO loose VALUES (?, ?, ?)", [*odd, *db.execute("SELECT * FROM history")])
        one_pass = xor(seal.row("loose", *row) for row in db.execute("SELECT task_id, event_id, event FROM loose"))
    columns = ("task_id", "event_id", "event")
    for cuts in ([], ["task-3"], ["a", "task-5"]):
        assert seal.table_sum(store.path, "loose", columns, "task_id", cuts) == one_pass, cuts
