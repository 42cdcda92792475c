"""Snapshots of the tasks service's view of the log, so that a start reads only what was
appended since the last one instead of the whole history.

A snapshot is derived data, never the only copy of anything: a SQLite file (0600) beside the
service's other local data holding every aggregate's state, the idempotency answers, the
tasks' archived history and, per partition, the log position it covers with the id of the
record just before it. It is sealed with the service's key (``shared/provenance/sealing.py``):
the seal covers the positions it claims and every row. It is used only when its seal holds,
it was written by the same evolve code (a digest of the modules that give state its shape)
and every position it claims checks out against the log; otherwise it is discarded and the
state is rebuilt from the log's beginning.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from services.tasks.adapters import history as history_module
from services.tasks.adapters import idempotency
from services.tasks.adapters.history import TaskHistory, Written
from services.tasks.adapters.idempotency import Remembered
from services.tasks.application import answers
from services.tasks.application.answers import Answer
from services.tasks.application.view import LogPositions, LogView
from shared.contract import catalog, envelope
from shared.contract.codec import DecodeFailure, from_structured
from shared.contract.envelope import AnyEvent
from shared.domain import evolve, projection, state
from shared.domain.state import Aggregate, Approval, Evaluation, Issue, Plan, SupportRequest, Task
from shared.kafka.snapshots import Claim, code_version
from shared.logging import get_logger
from shared.provenance.sealing import SealBroken, ShareFailed, SnapshotSeal, create_private, xor

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
    history: Mapping[str, Sequence[Written]]
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


TABLES = ("aggregates", "answers", "history")
HISTORY_SHARED_FROM = 64 * 2**20
"""From a file this large (bytes) on, a restore checks the history's rows in two processes of
their own while it reads the state: a million events (588 MiB) took 2-3 s in one pass."""
SHARES = 2


class SnapshotStore:
    """The snapshot file; also the archive ``TaskHistory`` reads older events from."""

    def __init__(self, path: Path, seal: SnapshotSeal, *, history_shared_from: int = HISTORY_SHARED_FROM) -> None:
        self.path = path
        self._seal = seal
        self._history_shared_from = history_shared_from
        self._schema_made = False
        self._sums: dict[str, int] | None = None
        """Per table, the XOR of its rows' MACs as this process wrote or verified them (never
        read back from the file, which anyone with the disk could have changed since)."""

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        fresh = not self._schema_made or not self.path.exists()  # deleting the file is always allowed
        if fresh:
            create_private(self.path)
        with closing(sqlite3.connect(self.path, timeout=30)) as connection:
            if fresh:  # once per file: the history route connects on every read
                connection.execute("PRAGMA journal_mode=WAL")  # kept by the file from then on
                connection.executescript(_SCHEMA)
                self._schema_made = True
            yield connection

    def claim(self) -> Claim | SealBroken | None:
        """What the snapshot claims to cover, if its seal holds; None when there is none."""
        if not self.path.exists():
            return None
        try:
            with self._connect() as db:
                meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
                rows = db.execute("SELECT partition, next_offset, last_event_id FROM positions").fetchall()
        except sqlite3.DatabaseError as error:
            return SealBroken(f"the snapshot cannot be read: {error!r}")
        positions = {partition: (offset, event_id) for partition, offset, event_id in rows}
        if not self._seal.holds(_sealed(meta, positions), meta.get("seal", "")):
            return SealBroken("its seal does not hold (written by another key, or changed since)")
        return Claim(
            code_version=meta["code_version"],
            topic=meta.get("topic", ""),
            positions=positions,
            written_at=float(meta.get("written_at", 0)),
        )

    def size_mib(self) -> float:
        files = (self.path.with_name(self.path.name + suffix) for suffix in ("", "-wal", "-shm"))
        return sum(f.stat().st_size for f in files if f.exists()) / 2**20

    def discard(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
        self._sums, self._schema_made = None, False

    def restore(self, claim: Claim) -> LogView:
        """The view the snapshot holds, its history left in the archive. SealBroken when a row
        is not as sealed, or does not parse: nothing of it is then used."""
        view = LogView(history=TaskHistory(archive=self), positions=LogPositions(claim.topic, dict(claim.positions)))
        mac = self._seal.row
        sums = dict.fromkeys(TABLES, 0)
        try:
            with self._connect() as db, ThreadPoolExecutor(max_workers=1) as aside:
                meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
                shared = None
                if self.path.stat().st_size >= self._history_shared_from:
                    columns = ("task_id", "event_id", "event")
                    cuts = _task_id_cuts(db, SHARES)
                    shared = aside.submit(self._seal.table_sum, self.path, "history", columns, "task_id", cuts)
                for aggregate_id, kind, saved in db.execute("SELECT id, kind, state FROM aggregates"):
                    sums["aggregates"] ^= int.from_bytes(mac("aggregates", aggregate_id, kind, saved), "big")
                    view.projection.aggregates[aggregate_id] = _KINDS[kind].model_validate_json(saved)
                for user, key, digest, status, body in db.execute(
                    "SELECT user, key, digest, status, body FROM answers"
                ):
                    sums["answers"] ^= int.from_bytes(mac("answers", user, key, digest, status, body), "big")
                    view.index.restore(user, key, Remembered(digest, Answer(status, orjson.loads(body))))
                history = _shared_sum(shared)
                if history is None:
                    rows = db.execute("SELECT task_id, event_id, event FROM history")
                    history = xor(mac("history", *row) for row in rows)
                sums["history"] = history
        except (sqlite3.DatabaseError, KeyError, ValueError) as error:
            raise SealBroken(f"a row of the snapshot does not parse: {error!r}"[:500]) from error
        if sums != _sums_of(meta):
            raise SealBroken("its rows are not the rows it sealed")
        self._sums = sums
        if meta.get("last_event_time"):
            view.projection.last_event_time = datetime.fromisoformat(meta["last_event_time"])
        view.projection.plan_evaluated = {
            plan_id: datetime.fromisoformat(at)
            for plan_id, at in orjson.loads(meta.get("plan_evaluated", "{}")).items()
        }
        return view

    def save(self, taken: Cut) -> None:
        """Writes the cut in one transaction, sealed: a snapshot is whole or is the one before.
        The tables' sums change by the rows replaced and added only."""
        meta = {
            "code_version": CODE_VERSION,
            "topic": taken.topic,
            "written_at": str(time.time()),
            "last_event_time": taken.last_event_time.isoformat() if taken.last_event_time else "",
            "plan_evaluated": orjson.dumps({k: v.isoformat() for k, v in taken.plan_evaluated.items()}).decode(),
        }
        sums = dict(self._sums) if self._sums is not None else dict.fromkeys(TABLES, 0)
        aggregates = [(i, type(a).__name__, a.__pydantic_serializer__.to_json(a)) for i, a in taken.aggregates]
        answers = [
            (user, key, r.digest, r.answer.status, orjson.dumps(r.answer.body)) for user, key, r in taken.answers
        ]
        with self._connect() as db, db:
            sums["aggregates"] = self._replaced(db, "aggregates", ("id",), ("kind", "state"), aggregates, sums)
            db.executemany("INSERT OR REPLACE INTO aggregates (id, kind, state) VALUES (?, ?, ?)", aggregates)
            sums["answers"] = self._replaced(
                db, "answers", ("user", "key"), ("digest", "status", "body"), answers, sums
            )
            db.executemany(
                "INSERT OR REPLACE INTO answers (user, key, digest, status, body) VALUES (?, ?, ?, ?, ?)", answers
            )
            for task_id, events in taken.history.items():
                for event in events:
                    row = (task_id, event.id, event.structured)
                    if db.execute(
                        "INSERT OR IGNORE INTO history (task_id, event_id, event) VALUES (?, ?, ?)", row
                    ).rowcount:
                        sums["history"] ^= int.from_bytes(self._seal.row("history", *row), "big")
            db.execute("DELETE FROM positions")
            db.executemany(
                "INSERT INTO positions (partition, next_offset, last_event_id) VALUES (?, ?, ?)",
                [(partition, offset, event_id) for partition, (offset, event_id) in taken.positions.items()],
            )
            meta["sums"] = orjson.dumps({table: f"{total:032x}" for table, total in sums.items()}).decode()
            meta["seal"] = self._seal.document(_sealed(meta, taken.positions))
            db.executemany("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", meta.items())
        self._sums = sums

    def _replaced(
        self,
        db: sqlite3.Connection,
        table: str,
        keys: tuple[str, ...],
        values: tuple[str, ...],
        rows: list[tuple[Any, ...]],
        sums: dict[str, int],
    ) -> int:
        """The table's sum with ``rows`` in place of the rows they replace."""
        total = sums[table]
        width = len(keys)
        where = " AND ".join(f"{k} = ?" for k in keys)
        query = f"SELECT {', '.join((*keys, *values))} FROM {table} WHERE {where}"  # the names are this module's own
        for row in rows:
            old = db.execute(query, row[:width]).fetchone()
            if old is not None:
                total ^= int.from_bytes(self._seal.row(table, *old), "big")
            total ^= int.from_bytes(self._seal.row(table, *row), "big")
        return total

    def events_about(self, task_id: str) -> list[AnyEvent]:
        if not self.path.exists():
            return []
        with self._connect() as db:
            rows = db.execute("SELECT event FROM history WHERE task_id = ?", (task_id,)).fetchall()
        events = [from_structured(row[0]) for row in rows]
        return [event for event in events if not isinstance(event, DecodeFailure)]


def _sealed(meta: dict[str, str], positions: dict[int, tuple[int, str]]) -> dict[str, object]:
    """What a snapshot's seal covers: the positions it claims, the code that wrote it, what it
    knows besides its rows, and its tables' sums."""
    return {
        "positions": [[partition, offset, event_id] for partition, (offset, event_id) in sorted(positions.items())],
        **{
            name: meta.get(name)
            for name in ("code_version", "topic", "written_at", "last_event_time", "plan_evaluated", "sums")
        },
    }


def _sums_of(meta: dict[str, str]) -> dict[str, int]:
    claimed = orjson.loads(meta.get("sums", "{}"))
    return {table: int(claimed.get(table, "0"), 16) for table in TABLES}


def _task_id_cuts(db: sqlite3.Connection, shares: int) -> list[str]:
    """Where to cut the history's key so that each of ``shares`` ranges holds about as many
    tasks (each keeps about as long a recent history); any cuts give the same sum."""
    task_ids = [task_id for (task_id,) in db.execute("SELECT id FROM aggregates WHERE kind = 'Task' ORDER BY id")]
    return [task_ids[len(task_ids) * share // shares] for share in range(1, shares) if task_ids]


def _shared_sum(shared: Future[int] | None) -> int | None:
    """The history's sum from the processes that checked it; None when there were none, or
    they could not run (the restore then checks it here: slower, the same sum)."""
    if shared is None:
        return None
    try:
        return shared.result()
    except (ShareFailed, OSError, subprocess.SubprocessError, ValueError) as error:
        log.warning("the history's sum could not be checked in processes of its own", error=repr(error))
        return None
