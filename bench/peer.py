"""The peer: the ``eventsourcing`` library, the Python event-sourcing library people already use,
rebuilding the same number of aggregates from the same number of events in its SQLite store, so
that our start time reads against something familiar. Used by ``bench.tasks_service``."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event


class Task(Aggregate):
    @event("Created")
    def __init__(self, title: str, lead_department: str) -> None:
        self.title = title
        self.lead_department = lead_department
        self.percent = 0
        self.note = ""

    @event("ProgressReported")
    def report_progress(self, percent: int, note: str) -> None:
        self.percent = percent
        self.note = note


class Tasks(Application[Any]):
    pass


def rebuild_with_eventsourcing(aggregates: int, per_aggregate: int) -> tuple[int, float]:
    """Writes ``aggregates`` tasks of ``per_aggregate`` events each into SQLite, then reads every
    one back (the library folds its events); returns the events read and the seconds it took."""
    with tempfile.TemporaryDirectory() as folder:
        environment = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(Path(folder) / "es.db")}
        application = Tasks(env=environment)
        ids = []
        for n in range(aggregates):
            task = Task(title=f"Task {n}", lead_department="JILIN")
            for version in range(2, per_aggregate + 1):
                task.report_progress(percent=version % 100, note="weekly report")
            application.save(task)
            ids.append(task.id)
        started = time.perf_counter()
        for task_id in ids:
            application.repository.get(task_id)
        seconds = time.perf_counter() - started
        application.close()
    return aggregates * per_aggregate, seconds
