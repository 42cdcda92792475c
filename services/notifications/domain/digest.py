"""The daily digest: each morning, Beijing time, what a department has falling due within a
week, what is late, and what support requests await its answer. Pure; one digest a
department a day, under an id derived from both, so a digest emitted twice is one digest."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, time, timedelta

from services.notifications.domain.schedule import Schedule
from shared.contract import catalog as c
from shared.contract.codes import Department
from shared.i18n import BEIJING

DIGEST_NAMESPACE = uuid.UUID("2d0e6a3f-7c41-4b8e-9f52-6a1d3c8e4b07")
SOON = timedelta(days=7)
MOST_ITEMS = 1000


def digest_id(department: Department, day: str) -> str:
    return str(uuid.uuid5(DIGEST_NAMESPACE, f"{department}/{day}"))


def daily_digests(
    schedule: Schedule, departments: Iterable[Department], now: datetime, at: time
) -> list[c.DailyDigest]:
    """Today's digests not yet emitted, once it is ``at`` o'clock in Beijing; a department with
    nothing to tell gets none."""
    local = now.astimezone(BEIJING)
    if local.time() < at:
        return []
    digests = []
    for department in sorted(set(departments)):
        alert_id = digest_id(department, local.date().isoformat())
        if alert_id in schedule.emitted:
            continue
        if items := digest_items(schedule, department, now):
            digests.append(
                c.DailyDigest(
                    alert_id=alert_id,
                    department=department,
                    day=local.date(),
                    items=tuple(items[:MOST_ITEMS]),
                    departments=(department,),
                )
            )
    return digests


def digest_items(schedule: Schedule, department: Department, now: datetime) -> list[c.DigestItem]:
    """Open tasks and milestones of the department past due or due within a week, and the
    support asked of it not yet answered; soonest first."""
    items = []
    for task_id, task in schedule.tasks.items():
        if task.open and task.due is not None and department in task.departments:
            items += _deadline_item(task_id, None, task.title, task.due, now)
    for deadline in schedule.deadlines.values():
        if deadline.milestone_id is not None and department in deadline.departments:
            items += _deadline_item(deadline.task_id, deadline.milestone_id, deadline.title, deadline.due, now)
    for part in schedule.support.watched.values():
        if part.department == department:
            items.append(
                c.DigestItem(
                    kind="awaiting_answer",
                    task_id=part.task_id,
                    request_id=part.request_id,
                    title=part.title,
                    due=part.answer_by,
                )
            )
    return sorted(items, key=lambda item: (item.due, item.task_id, item.milestone_id or "", item.request_id or ""))


def _deadline_item(
    task_id: str, milestone_id: str | None, title: str, due: datetime, now: datetime
) -> list[c.DigestItem]:
    if due > now + SOON:
        return []
    late = due <= now
    return [
        c.DigestItem(
            kind="late" if late else "due_soon", task_id=task_id, milestone_id=milestone_id, title=title, due=due
        )
    ]
