"""The health rule (docs/health.md) as a table of cases: given a task and a moment, its health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.contract.codes import CooperationField, TaskHealth
from shared.domain.health import assess
from shared.domain.state import Milestone, ProgressPoint, Task, TaskStatus

START = datetime(2027, 1, 1, tzinfo=UTC)
DUE = START + timedelta(days=100)


def task(
    *,
    percent: int = 0,
    milestones: tuple[Milestone, ...] = (),
    progress: tuple[tuple[int, int], ...] = (),
    status: TaskStatus = TaskStatus.OPEN,
) -> Task:
    """``progress``: (day, percent) of each report."""
    return Task(
        version=1,
        created_at=START,
        updated_at=START,
        task_id="t",
        plan_id="p",
        title="Trade",
        field=CooperationField.TRADE,
        due=DUE,
        created_by="u",
        percent=percent,
        milestones=milestones,
        status=status,
        recent_progress=tuple(ProgressPoint(at=START + timedelta(days=d), percent=p) for d, p in progress),
    )


def milestone(day: int, met: bool = False) -> Milestone:
    due = START + timedelta(days=day)
    return Milestone(milestone_id=f"m{day}", title=f"Milestone {day}", due=due, met_at=due if met else None)


CASES = [
    # (case, task, day of assessment, expected health)
    ("completed", task(status=TaskStatus.COMPLETED, percent=100), 50, TaskHealth.DONE),
    ("cancelled", task(status=TaskStatus.CANCELLED), 150, TaskHealth.DONE),
    ("past its due date", task(percent=90), 101, TaskHealth.LATE),
    ("a milestone past due", task(milestones=(milestone(30),)), 31, TaskHealth.LATE),
    ("a met milestone past due", task(percent=30, milestones=(milestone(30, met=True),)), 31, TaskHealth.ON_TRACK),
    ("a milestone due in 5 days", task(milestones=(milestone(40),)), 35, TaskHealth.AT_RISK),
    ("a milestone due in 10 days", task(percent=35, milestones=(milestone(45),)), 35, TaskHealth.ON_TRACK),
    ("early days, nothing reported", task(), 10, TaskHealth.ON_TRACK),
    ("half the time gone, 10% done, no trend", task(percent=10), 50, TaskHealth.AT_RISK),
    ("half the time gone, 40% done, no trend", task(percent=40), 50, TaskHealth.ON_TRACK),
    ("trend finishes in time", task(percent=50, progress=((10, 10), (50, 50))), 51, TaskHealth.ON_TRACK),
    ("trend finishes too late", task(percent=30, progress=((10, 10), (50, 30))), 51, TaskHealth.AT_RISK),
    ("stalled over the last reports", task(percent=40, progress=((20, 40), (40, 40))), 41, TaskHealth.AT_RISK),
    ("going backwards", task(percent=30, progress=((20, 40), (40, 30))), 41, TaskHealth.AT_RISK),
    ("a 10% task with a month left", task(percent=10, progress=((60, 8), (70, 10))), 70, TaskHealth.AT_RISK),
    ("reported done, awaiting completion", task(percent=100, progress=((60, 90), (70, 100))), 71, TaskHealth.ON_TRACK),
    ("two reports at the same moment", task(percent=10, progress=((5, 5), (5, 10))), 6, TaskHealth.ON_TRACK),
]


@pytest.mark.parametrize(("case", "subject", "day", "expected"), CASES, ids=[case[0] for case in CASES])
def test_the_health_rule(case: str, subject: Task, day: int, expected: TaskHealth) -> None:
    health, reason = assess(subject, START + timedelta(days=day))
    assert health is expected, f"{case}: {reason}"
    assert reason


def test_a_trend_so_slow_it_would_overflow_the_calendar_is_at_risk() -> None:
    crawling = task(percent=1, progress=((1, 0), (99, 1)))
    assert assess(crawling, START + timedelta(days=99))[0] is TaskHealth.AT_RISK
