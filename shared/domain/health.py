"""A task's health: on track, at risk, late or done, from its milestones and its progress
reports. Pure; the rule is written down in docs/health.md, which this follows line by line."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.contract.codes import TaskHealth
from shared.domain.state import Task

MILESTONE_LEAD = timedelta(days=7)
"""An open milestone due this soon puts its task at risk."""
TREND_WINDOW = 5
"""How many of the latest progress reports the trend is drawn from."""
BEHIND_A_STRAIGHT_LINE = 25
"""Without a trend: at risk when this many points behind a straight line from creation to the due date."""
SETTLING_SHARE = 0.2
"""...once this share of the task's time has passed (before, a slow start is no sign)."""


def assess(task: Task, now: datetime) -> tuple[TaskHealth, str]:
    """The task's health at ``now``, and why."""
    if not task.is_open:
        return TaskHealth.DONE, f"the task is {task.status}"
    if task.due < now:
        return TaskHealth.LATE, f"its due date {task.due:%Y-%m-%d} has passed"
    missed = [m for m in task.milestones if not m.met and m.due < now]
    if missed:
        return TaskHealth.LATE, f"milestone {missed[0].title!r} was due {missed[0].due:%Y-%m-%d}"
    close = [m for m in task.milestones if not m.met and m.due - now <= MILESTONE_LEAD]
    if close:
        return TaskHealth.AT_RISK, f"milestone {close[0].title!r} is due {close[0].due:%Y-%m-%d} and not met"
    return _by_progress(task, now)


def _by_progress(task: Task, now: datetime) -> tuple[TaskHealth, str]:
    points = task.recent_progress[-TREND_WINDOW:]
    if len(points) >= 2 and points[-1].at > points[0].at:
        return _by_trend(task, points[0].at, points[0].percent, points[-1].at, points[-1].percent)
    span = (task.due - task.created_at).total_seconds()
    elapsed = (now - task.created_at).total_seconds()
    if span <= 0 or elapsed < SETTLING_SHARE * span:
        return TaskHealth.ON_TRACK, "on schedule"
    expected = 100 * elapsed / span
    if task.percent < expected - BEHIND_A_STRAIGHT_LINE:
        return TaskHealth.AT_RISK, f"{task.percent}% done where a straight line would be at {expected:.0f}%"
    return TaskHealth.ON_TRACK, "on schedule"


def _by_trend(task: Task, first_at: datetime, first: int, last_at: datetime, last: int) -> tuple[TaskHealth, str]:
    if last >= 100:
        return TaskHealth.ON_TRACK, "all the work is reported done"
    per_day = (last - first) / ((last_at - first_at).total_seconds() / 86400)
    if per_day <= 0:
        return TaskHealth.AT_RISK, f"no progress over the last reports (still {last}%)"
    days_needed = (100 - last) / per_day
    days_left = (task.due - last_at).total_seconds() / 86400
    if days_needed > days_left:
        return TaskHealth.AT_RISK, (
            f"at {per_day:.2f} points a day it needs {days_needed:,.0f} more days, and {days_left:,.0f} are left"
        )
    finish = last_at + timedelta(days=days_needed)
    return TaskHealth.ON_TRACK, f"at {per_day:.2f} points a day it will be done by {finish:%Y-%m-%d}"
