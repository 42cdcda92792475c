"""What the audit service works out from the trail: a task as of any moment (replayed with the
tasks service's own ``evolve``) and the responsibility report."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from services.audit.adapters.store import AuditStore, EntryFilter, event_of
from shared.auth import Actor, can_read_everything
from shared.contract.catalog import IssueEscalated
from shared.contract.codes import Department
from shared.contract.envelope import AnyEvent, CloudEvent
from shared.domain.evolve import DOMAIN_TYPES, EvolveError
from shared.domain.projection import Projection
from shared.domain.state import Task


async def domain_events(store: AuditStore, where: EntryFilter) -> AsyncIterator[tuple[Any, AnyEvent]]:
    """The stored domain events that match, in log order, with their entries."""
    async for rows in store.stream(where):
        for row in rows:
            if row.event_type in DOMAIN_TYPES and isinstance(event := event_of(row), CloudEvent):
                yield row, event


def fold(projection: Projection, event: AnyEvent) -> bool:
    """``projection.apply``, passing over an event that does not fit (the trail keeps it)."""
    try:
        return projection.apply(event)
    except (EvolveError, ValueError, TypeError):
        return False


async def replay_task(store: AuditStore, task_id: str, as_of: datetime | None) -> Task | None:
    """The task as it stood at ``as_of``, folded with the same ``evolve`` as the tasks service."""
    projection = Projection()
    async for _, event in domain_events(store, EntryFilter(task_id=task_id, until=as_of)):
        fold(projection, event)
    return projection.task(task_id)


async def responsibility(store: AuditStore, now: datetime) -> dict[str, dict[str, int]]:
    """Per department: what it was assigned (lead, supporting), what it did, what is late and
    what was escalated."""
    projection = Projection()
    acts: Counter[str] = Counter()
    escalated_tasks: Counter[str] = Counter()
    async for row, event in domain_events(store, EntryFilter()):
        if row.actordept:
            acts[row.actordept] += 1
        if fold(projection, event) and isinstance(event.data, IssueEscalated):
            escalated_tasks[event.data.task_id] += 1
    table = {
        str(d): {"lead": 0, "supporting": 0, "acts": acts.get(str(d), 0), "late": 0, "escalated": 0} for d in Department
    }
    for task in projection.tasks():
        departments = [task.lead_department, *task.supporting_departments]
        if task.lead_department:
            table[str(task.lead_department)]["lead"] += 1
        for department in task.supporting_departments:
            table[str(department)]["supporting"] += 1
        for department in filter(None, departments):
            table[str(department)]["late"] += int(task.is_overdue(now))
            table[str(department)]["escalated"] += escalated_tasks.get(task.task_id, 0)
    return table


def visibility(actor: Actor) -> str | None:
    """None: sees everything; otherwise the department whose tasks bound what it sees."""
    return None if can_read_everything(actor) else str(actor.department)
