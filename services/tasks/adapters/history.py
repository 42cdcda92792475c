"""Each task's history: every event about it (its own, and its issues', approvals',
evaluations' and support requests'). The events since the last snapshot are kept in memory;
the older ones are read from the snapshot's archive when a task's history is asked for."""

from __future__ import annotations

import asyncio
from typing import Protocol

from shared.contract.envelope import AnyEvent


class Archive(Protocol):
    def events_about(self, task_id: str) -> list[AnyEvent]: ...


def about(event: AnyEvent) -> str:
    """The task (or plan) whose history an event belongs to."""
    data = event.data
    return str(getattr(data, "task_id", None) or getattr(data, "plan_id", None) or event.subject)


class TaskHistory:
    def __init__(self, archive: Archive | None = None) -> None:
        self.archive = archive
        self.recent: dict[str, list[AnyEvent]] = {}
        """Per task: the events not yet archived, in the order they were taken."""

    def add(self, event: AnyEvent) -> None:
        self.recent.setdefault(about(event), []).append(event)

    async def of(self, task_id: str) -> list[AnyEvent]:
        """Every event about the task, in time order."""
        archived = await asyncio.to_thread(self.archive.events_about, task_id) if self.archive is not None else []
        # An event may be in both while a snapshot is being written: it is listed once.
        unique = {event.id: event for event in (*archived, *self.recent.get(task_id, ()))}
        return sorted(unique.values(), key=lambda e: (e.time, e.aggregateversion or 0, e.id))

    def taken(self) -> dict[str, list[AnyEvent]]:
        """What the next snapshot archives: a copy of the recent events."""
        return {task_id: list(events) for task_id, events in self.recent.items()}

    def forget(self, archived: dict[str, list[AnyEvent]]) -> None:
        """Drops from memory what a snapshot archived (events added since stay)."""
        for task_id, events in archived.items():
            remaining = self.recent.get(task_id, [])[len(events) :]
            if remaining:
                self.recent[task_id] = remaining
            else:
                self.recent.pop(task_id, None)
