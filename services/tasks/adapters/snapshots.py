"""Snapshots of the tasks service's view of the log, so that a start reads only what was
appended since the last one instead of the whole history.

A snapshot is derived data, never the only copy of anything: a SQLite file beside the
service's other local data holding every aggregate's state, the idempotency answers, the
tasks' archived history and, per partition, the log position it covers with the id of the
record just before it. It is used only when it was written by the same evolve code (a digest
of the modules that give state its shape) and every position it claims checks out against
the log; otherwise it is discarded and the state is rebuilt from the log's beginning.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson

from services.tasks import answers
from services.tasks.adapters import history as history_module
from services.tasks.adapters import idempotency
from services.tasks.adapters.history import TaskHistory
from services.tasks.adapters.idempotency import Remembered
from services.tasks.answers import Answer
from services.tasks.view import LogPositions, LogView
from shared.contract import catalog, envelope
from shared.contract.codec import DecodeFailure, from_structured, to_structured
from shared.contract.envelope import AnyEvent
from shared.domain import evolve, projection, state
from shared.domain.state import Aggregate, Approval, Evaluation, Issue, Plan, SupportRequest, Task
from shared.kafka.snapshots import Claim, code_version
from shared.logging import get_logger

log = get_logger(__name__)

_KINDS: dict[str, type[Aggregate]] = {
    kind.__name__: kind for kind in (Plan, Task, Issue, Approval, Evaluation, SupportRequest)
}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS positions (
    partition INTEGER PRIMARY KEY, next_offset INTEGER NOT NULL, last_event_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS aggregates (id TEXT PRIMARY KEY, kind TEXT NOT NULL, state BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS answers (
    user TEXT NOT NULL, key TEXT NOT NULL, digest TEXT, status INTEGER NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (user, key)
);
CREATE TABLE IF NOT EXISTS history (
    task_id TEXT NOT NULL, event_id TEXT NOT NULL, event BLOB NOT NULL, PRIMARY KEY (task_id, event_id)
) WITHOUT ROWID;
"""


CODE_VERSION = code_version(
    catalog, envelope, state, evolve, projection, answers, idempotency, history_module, sys.modules[__name__]
)
"""Changes whenever the code that shapes the state or the snapshot does: older snapshots are discarded."""


@dataclass
class Cut:
    """What changed in the view since the last snapshot, taken at one moment: the states are
    frozen models and the positions a copy, so it is written while the view moves on."""

    positions: dict[int, tuple[int, str]]
    topic: str
    aggregates: list[tuple[str, Aggregate]]
    answers: list[tuple[str, str, Remembered]]
    history: dict[str, list[AnyEvent]]
    last_event_time: datetime | None
    plan_evaluated: dict[str, datetime]
    events_taken: int
    ids: set[str] = field(default_factory=set)
    slots: set[tuple[str, str]] = field(default_factory=set)


def cut(view: LogView) -> Cut:
    """Takes what changed out of the view (``restore_cut`` puts it back if the write fails)."""
    ids, view.projection.changed = view.projection.changed, set()
    slots, view.index.changed = view.index.changed, set()
    aggregates = view.projection.aggregates
    return Cut(
        positions=dict(view.positions.next),
        topic=view.positions.topic,
        aggregates=[(aggregate_id, aggregates[aggregate_id]) for aggregate_id in ids if aggregate_id in aggregates],
        answers=view.index.remembered(slots),
        history=view.history.taken(),
        last_event_time=view.projection.last_event_time,
        plan_evaluated=dict(view.projection.plan_evaluated),
        events_taken=view.events_taken,
        ids=ids,
        slots=slots,
    )


def restore_cut(view: LogView, taken: Cut) -> None:
    view.projection.changed |= taken.ids
    view.index.changed |= taken.slots


async def take_snapshot(store: SnapshotStore, view: LogView) -> int:
    """Writes what changed in the view since the last snapshot; returns the view's event count it covers."""
    taken = cut(view)  # one moment of the view: nothing may run between reading it and taking it
    try:
        await asyncio.to_thread(store.save, taken)
    except Exception:
        restore_cut(view, taken)
        raise
    view.history.forget(taken.history)
    return taken.events_taken


class SnapshotStore:
    """The snapshot file; also the archive ``TaskHistory`` reads older events from."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._schema_made = False

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        fresh = not self._schema_made or not self.path.exists()  # deleting the file is always allowed
        if fresh:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=30)) as connection:
            if fresh:  # once per file: the history route connects on every read
                connection.execute("PRAGMA journal_mode=WAL")  # kept by the file from then on
                connection.executescript(_SCHEMA)
                self._schema_made = True
            yield connection

    def claim(self) -> Claim | None:
        """What the snapshot claims to cover; None when there is none or it cannot be read."""
        if not self.path.exists():
            return None
        try:
            with self._connect() as db:
                meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
                rows = db.execute("SELECT partition, next_offset, last_event_id FROM positions").fetchall()
        except sqlite3.DatabaseError as error:
            log.warning("the snapshot cannot be read", path=str(self.path), error=repr(error))
            return None
        if "code_version" not in meta:
            return None
        return Claim(
            code_version=meta["code_version"],
            topic=meta.get("topic", ""),
            positions={partition: (offset, event_id) for partition, offset, event_id in rows},
            written_at=float(meta.get("written_at", 0)),
        )

    def size_mib(self) -> float:
        files = (self.path.with_name(self.path.name + suffix) for suffix in ("", "-wal", "-shm"))
        return sum(f.stat().st_size for f in files if f.exists()) / 2**20

    def discard(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)

    def restore(self, claim: Claim) -> LogView:
        """The view the snapshot holds, its history left in the archive."""
        view = LogView(history=TaskHistory(archive=self), positions=LogPositions(claim.topic, dict(claim.positions)))
        with self._connect() as db:
            meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
            for aggregate_id, kind, saved in db.execute("SELECT id, kind, state FROM aggregates"):
                view.projection.aggregates[aggregate_id] = _KINDS[kind].model_validate_json(saved)
            for user, key, digest, status, body in db.execute("SELECT user, key, digest, status, body FROM answers"):
                view.index.restore(user, key, Remembered(digest, Answer(status, orjson.loads(body))))
        if meta.get("last_event_time"):
            view.projection.last_event_time = datetime.fromisoformat(meta["last_event_time"])
        view.projection.plan_evaluated = {
            plan_id: datetime.fromisoformat(at)
            for plan_id, at in orjson.loads(meta.get("plan_evaluated", "{}")).items()
        }
        return view

    def save(self, taken: Cut) -> None:
        """Writes the cut in one transaction: a snapshot is whole or is the one before."""
        meta = {
            "code_version": CODE_VERSION,
            "topic": taken.topic,
            "written_at": str(time.time()),
            "last_event_time": taken.last_event_time.isoformat() if taken.last_event_time else "",
            "plan_evaluated": orjson.dumps({k: v.isoformat() for k, v in taken.plan_evaluated.items()}).decode(),
        }
        with self._connect() as db, db:
            db.executemany(
                "INSERT OR REPLACE INTO aggregates (id, kind, state) VALUES (?, ?, ?)",
                [(i, type(a).__name__, a.__pydantic_serializer__.to_json(a)) for i, a in taken.aggregates],
            )
            db.executemany(
                "INSERT OR REPLACE INTO answers (user, key, digest, status, body) VALUES (?, ?, ?, ?, ?)",
                [(user, key, r.digest, r.answer.status, orjson.dumps(r.answer.body)) for user, key, r in taken.answers],
            )
            db.executemany(
                "INSERT OR IGNORE INTO history (task_id, event_id, event) VALUES (?, ?, ?)",
                [(task_id, e.id, to_structured(e)) for task_id, events in taken.history.items() for e in events],
            )
            db.execute("DELETE FROM positions")
            db.executemany(
                "INSERT INTO positions (partition, next_offset, last_event_id) VALUES (?, ?, ?)",
                [(partition, offset, event_id) for partition, (offset, event_id) in taken.positions.items()],
            )
            db.executemany("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", meta.items())

    def events_about(self, task_id: str) -> list[AnyEvent]:
        if not self.path.exists():
            return []
        with self._connect() as db:
            rows = db.execute("SELECT event FROM history WHERE task_id = ?", (task_id,)).fetchall()
        events = [from_structured(row[0]) for row in rows]
        return [event for event in events if not isinstance(event, DecodeFailure)]
