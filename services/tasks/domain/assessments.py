"""What the system itself records as time passes: a task's health when it changes, and an
evaluation of a plan falling due. Pure: the moment is given."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from shared.contract import catalog as c
from shared.domain.calendar import months_after
from shared.domain.health import assess
from shared.domain.state import Plan, Task


class PlanWorld(Protocol):
    def last_plan_evaluation(self, plan_id: str) -> datetime | None: ...


def health_change(task: Task, now: datetime) -> list[c.TaskHealthChanged]:
    """``task.health_changed`` when the task's health at ``now`` is not what was last recorded."""
    health, reason = assess(task, now)
    if health is task.health:
        return []
    return [c.TaskHealthChanged(task_id=task.task_id, health=health, previous=task.health, reason=reason[:2000])]


def evaluation_due(
    plan: Plan, world: PlanWorld, now: datetime, month: timedelta | None = None
) -> list[c.PlanEvaluationDue]:
    """``plan.evaluation_due`` once per due date: an interval after the plan's approval or its
    last evaluation as a whole. ``month``: a month of that length (demonstrations only)."""
    if plan.evaluation_interval_months is None:
        return []
    last = world.last_plan_evaluation(plan.plan_id)
    base = max(plan.created_at, last or plan.created_at)
    interval = plan.evaluation_interval_months
    due = months_after(base, interval) if month is None else base + interval * month
    if now < due or plan.evaluation_due == due:
        return []
    return [c.PlanEvaluationDue(plan_id=plan.plan_id, due=due, last_evaluated_at=last)]
