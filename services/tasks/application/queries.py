"""What the tasks service answers reads with: the tasks an actor may see, filtered and paged,
and a task's history. Everything comes from the state rebuilt from the log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.auth import Actor, can_read
from shared.contract.catalog import Evidence
from shared.contract.codes import CooperationField, Department, TaskHealth
from shared.cursor import decode_cursor, encode_cursor
from shared.domain.projection import Projection
from shared.domain.state import Aggregate, Evaluation, SupportRequest, Task, TaskStatus


@dataclass(frozen=True)
class TaskFilter:
    department: Department | None = None
    field: CooperationField | None = None
    status: TaskStatus | None = None
    overdue: bool | None = None
    health: TaskHealth | None = None


def readable_task(task: Task | None, actor: Actor) -> Task | None:
    """The task, if the actor may see it (it leads or supports it, or reads everything)."""
    if task is None or not can_read(actor, (task.lead_department, *task.supporting_departments)):
        return None
    return task


def evidence_of(projection: Projection, task: Task) -> dict[str, Evidence]:
    """Every file the task's acts rest on, by SHA-256: its progress reports, milestones met,
    issues, support answers and evaluations."""
    found = [*task.evidence, *(e for m in task.milestones for e in m.evidence)]
    found += [e for issue in projection.issues_of(task.task_id) for e in issue.evidence]
    found += [e for r in projection.support_requests_of(task.task_id) for a in r.answers for e in a.evidence]
    found += [
        e
        for a in projection.aggregates.values()
        if isinstance(a, Evaluation) and a.task_id == task.task_id
        for e in a.evidence
    ]
    return {e.sha256: e for e in found}


def readable(projection: Projection, aggregate: Aggregate | None, actor: Actor) -> Aggregate | None:
    """An aggregate of a task (the task itself, its issues, approvals, evaluations) the actor may see."""
    task_id = getattr(aggregate, "task_id", None)
    if aggregate is None or task_id is None or readable_task(projection.task(task_id), actor) is None:
        return None
    return aggregate


def readable_request(projection: Projection, request: SupportRequest | None, actor: Actor) -> SupportRequest | None:
    """A support request, if the actor may see it: its task's departments, the departments it
    asks, and whoever reads everything."""
    task = projection.task(request.task_id) if request is not None else None
    if request is None or task is None:
        return None
    departments = (task.lead_department, *task.supporting_departments, *(a.department for a in request.answers))
    return request if can_read(actor, departments) else None


def list_tasks(
    projection: Projection, actor: Actor, where: TaskFilter, now: datetime, *, limit: int, cursor: str | None
) -> tuple[list[Task], str | None]:
    """One page of the tasks the actor may see, in creation order; the next page's cursor.
    ValueError for a cursor this service did not issue."""
    after = decode_cursor(cursor, str, str) if cursor else None
    matching = sorted(
        (t for t in projection.tasks() if readable_task(t, actor) and _matches(t, where, now)),
        key=_order,
    )
    if after is not None:
        matching = [t for t in matching if _order(t) > after]
    page = matching[:limit]
    next_cursor = encode_cursor(*_order(page[-1])) if len(matching) > limit else None
    return page, next_cursor


def _matches(task: Task, where: TaskFilter, now: datetime) -> bool:
    return (
        (where.department is None or task.responsible(where.department))
        and (where.field is None or task.field == where.field)
        and (where.status is None or task.status is where.status)
        and (where.overdue is None or task.is_overdue(now) == where.overdue)
        and (where.health is None or task.health is where.health)
    )


def _order(task: Task) -> tuple[str, str]:
    return (task.created_at.isoformat(), task.task_id)
