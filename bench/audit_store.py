"""The audit store's INSERT of entries into SQLite, µs per row (no broker, the same rows in each
design, batches of 5,000 as ingest writes them): one row per statement (``executemany``) against
``ROWS_PER_STATEMENT`` rows a statement, alone and while another thread computes, as the next
batch's chaining does during ingest; then event ids random (version 4) against time-ordered
(version 7), which decides where the index of event ids grows.

    .venv/bin/python -m bench.audit_store [--rows 200000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.dialects import sqlite

from bench.results import Results, Row, scaled
from services.audit.adapters.schema import entries, metadata
from services.audit.adapters.store import ROWS_PER_STATEMENT
from shared.contract.envelope import time_ordered_id
from shared.process import GIL_SWITCH_SECONDS

BATCH = 5000
ONE_ROW = entries.insert().compile(dialect=sqlite.dialect(), column_keys=[c.name for c in entries.c]).string


def entry_rows(count: int, event_id: Callable[[], uuid.UUID]) -> list[tuple[Any, ...]]:
    """Rows shaped as ingest writes them: 1,000 tasks, three partitions, a chained hash."""
    rows, previous, headers = [], "0" * 64, os.urandom(450)
    for n in range(count):
        digest = hashlib.sha256(previous.encode()).hexdigest()
        task = f"task-{n % 1000}"
        where = ("policy.events", n % 3, n // 3, 1_765_000_000_000 + n)
        value = b'{"task_id":"%s","percent":40,"note":"site works on schedule"}' % task.encode()
        columns = (str(event_id()), "org.policytrack.task.progress_reported.v1", task, task, "u-jilin-1", "JILIN")
        moment = f"2026-12-06T06:{n // 60_000 % 60:02d}:{n // 1000 % 60:02d}.{n % 1000:03d}000Z"
        rows.append((n + 1, *where, task.encode(), value, headers, *columns, moment, None, previous, digest))
        previous = digest
    return rows


@contextmanager
def busy_thread(busy: bool) -> Iterator[None]:
    """Another thread of Python work beside the inserts, or none."""
    stop = threading.Event()

    def compute() -> None:
        while not stop.is_set():
            sum(i * i for i in range(1000))

    worker = threading.Thread(target=compute) if busy else None
    if worker is not None:
        worker.start()
    try:
        yield
    finally:
        stop.set()
        if worker is not None:
            worker.join()


def per_row(rows: list[tuple[Any, ...]], per_statement: int, *, busy: bool) -> float:
    """µs per row to insert ``rows`` into a new store, ``per_statement`` rows a statement."""
    head, one = ONE_ROW.split(" VALUES ", 1)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "audit.sqlite"
        engine = create_engine(f"sqlite:///{path}")
        metadata.create_all(engine)
        engine.dispose()
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        with busy_thread(busy):
            started = time.perf_counter()
            for first in range(0, len(rows), BATCH):
                db.execute("BEGIN")
                batch = rows[first : first + BATCH]
                if per_statement == 1:
                    db.executemany(ONE_ROW, batch)
                for start in range(0, len(batch), per_statement) if per_statement > 1 else ():
                    chunk = batch[start : start + per_statement]
                    db.execute(f"{head} VALUES {', '.join([one] * len(chunk))}", [v for r in chunk for v in r])
                db.execute("COMMIT")
            seconds = time.perf_counter() - started
        db.close()
    return seconds / len(rows) * 1e6


def main(count: int) -> None:
    results = Results("audit_store")
    ordered = entry_rows(count, time_ordered_id)
    print(f"inserting {count:,} entries, batches of {BATCH:,}, µs per row:")
    for busy in (False, True):
        beside = "another thread computing" if busy else "alone"
        one = per_row(ordered, 1, busy=busy)
        results.add(Row(f"one row a statement (executemany), {beside}", one, "µs"))
        many = per_row(ordered, ROWS_PER_STATEMENT, busy=busy)
        label = f"{ROWS_PER_STATEMENT} rows a statement (as the store writes), {beside}"
        results.add(Row(label, many, "µs", baseline=one, lower_is_better=True))
    random_ids = per_row(entry_rows(count, uuid.uuid4), ROWS_PER_STATEMENT, busy=False)
    results.add(Row("event ids random (version 4)", random_ids, "µs"))
    ordered_ids = per_row(ordered, ROWS_PER_STATEMENT, busy=False)
    results.add(Row("event ids time-ordered (version 7)", ordered_ids, "µs", baseline=random_ids, lower_is_better=True))
    results.save()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=scaled(200_000, 20_000))
    sys.setswitchinterval(GIL_SWITCH_SECONDS)  # as every service runs
    main(parser.parse_args().rows)
