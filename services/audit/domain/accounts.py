"""What each party did with its duty, worked out from a replay of the trail. Pure: a projection
and a moment in, tables out. The responsibility report and the NDRC's implementation report
both count with these functions, so they cannot disagree."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from shared.contract.codes import Department, TaskHealth
from shared.contract.reports import RESPONSIBILITY_COLUMNS
from shared.domain.projection import Projection
from shared.domain.state import AnswerState, DepartmentAnswer, Plan, SupportRequest, Task, TaskStatus

COLUMNS = RESPONSIBILITY_COLUMNS


def responsibility(
    projection: Projection, acts: Counter[str], escalations: Counter[str], now: datetime
) -> dict[str, dict[str, int]]:
    """Per department: what it was given (lead, supporting) and did (acts); as lead, its tasks
    done, late, at risk and escalated; as supporter, how it answered support requests; and (the
    NDRC) which evaluations are overdue."""
    table = {str(d): dict.fromkeys(COLUMNS, 0) for d in Department}
    for department, count in acts.items():
        if department in table:
            table[department]["acts"] = count
    for task in projection.tasks():
        _count_task(table, task, escalations.get(task.task_id, 0), now)
    for request in _support_requests(projection):
        for answer in request.answers:
            _count_answer(table[str(answer.department)], request, answer, now)
    table[Department.NDRC]["evaluations_overdue"] = len(overdue_evaluations(projection))
    return table


def _count_task(table: dict[str, dict[str, int]], task: Task, escalated: int, now: datetime) -> None:
    """The lead answers for its task's outcome; a supporting department only for the support
    asked of it (``_count_answer``), never for the lead's lateness."""
    for department in task.supporting_departments:
        table[str(department)]["supporting"] += 1
    if task.lead_department is None:
        return
    row = table[str(task.lead_department)]
    row["lead"] += 1
    row["done"] += int(task.status is TaskStatus.COMPLETED)
    row["late"] += int(task.is_overdue(now))
    row["at_risk"] += int(task.is_open and not task.is_overdue(now) and task.health is TaskHealth.AT_RISK)
    row["escalated"] += escalated


def _count_answer(row: dict[str, int], request: SupportRequest, answer: DepartmentAnswer, now: datetime) -> None:
    row["support_received"] += 1
    if answer.state is AnswerState.DECLINED:
        row["support_declined"] += 1
    elif answer.state is AnswerState.ANSWERED and answer.answered_at is not None:
        key = "support_answered_in_time" if answer.answered_at <= request.by else "support_late"
        row[key] += 1
    elif request.is_open and request.by < now:
        row["support_unanswered"] += 1


def _support_requests(projection: Projection) -> list[SupportRequest]:
    return [a for a in projection.aggregates.values() if isinstance(a, SupportRequest)]


def overdue_evaluations(projection: Projection) -> list[Plan]:
    """Plans whose evaluation fell due and has not been made since."""
    overdue = []
    for plan in projection.plans():
        last = projection.last_plan_evaluation(plan.plan_id)
        if plan.evaluation_due is not None and (last is None or last < plan.evaluation_due):
            overdue.append(plan)
    return overdue


def task_line(task: Task) -> dict[str, Any]:
    return {
        "task_id": task.task_id,
        "title": task.title,
        "field": str(task.field),
        "lead_department": task.lead_department and str(task.lead_department),
        "percent": task.percent,
        "health": str(task.health),
        "reason": task.health_reason,
        "due": task.due.isoformat(),
    }
