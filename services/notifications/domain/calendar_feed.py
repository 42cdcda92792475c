"""Deadlines in the reader's own calendar: the secret-address feeds, who may make, see, rotate
and revoke them, and which dated entries a feed shows. Pure: the edge draws the secret and
writes the iCalendar text.

A feed shows the deadlines of its maker's department: the tasks and milestones it leads or
supports, the support requests asked of it and, for the supervisor (NDRC), when each plan's
evaluation falls due. Whoever may read everything can ask for all of it instead. It is what
the maker may see in the roles they had when they made it. A department's feed is kept
(rotated, revoked) by anyone of the department; a person's only by that person."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.notifications.domain.schedule import Schedule
from shared.contract import catalog as c
from shared.contract.codes import Department, Role
from shared.domain.access import Actor, can_read_everything, can_write
from shared.domain.refusals import Forbidden

EntryKind = Literal["task_due", "milestone_due", "support_answer_by", "evaluation_due"]


class FeedBody(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    owner: Literal["person", "department"] = Field(
        default="person", description="your own feed, or one your whole department keeps"
    )
    scope: Literal["own", "all"] = Field(
        default="own", description="your department's own deadlines, or all you may see (if you may see all)"
    )
    language: Literal["zh-CN", "en", "ko"] = "zh-CN"


@dataclass(frozen=True, slots=True)
class Feed:
    feed_id: str
    owner: Literal["department", "person"]
    reader: Actor
    """Whose view the feed shows: its maker, in the roles they had then."""
    scope: Literal["own", "all"]
    language: str
    secret_sha256: str
    created_at: datetime

    def public(self) -> dict[str, object]:
        return {
            "id": self.feed_id,
            "owner": self.owner,
            "scope": self.scope,
            "department": self.reader.department,
            "created_by": self.reader.user,
            "language": self.language,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Entry:
    """One dated thing in a feed; ``uid`` stays the same while it changes, so a calendar
    replaces the entry instead of adding another."""

    uid: str
    kind: EntryKind
    title: str
    due: datetime
    task_id: str | None = None
    detail: str = ""


def issue(body: FeedBody, actor: Actor, feed_id: str, secret_sha256: str) -> c.CalendarFeedIssued:
    if not can_write(actor):
        raise Forbidden("auditors read the trail; they do not make feeds (a feed is a write on the log)")
    if body.scope == "all" and not can_read_everything(actor):
        raise Forbidden(f"{actor.department} sees only its own tasks: its feed holds its own deadlines", "scope")
    return c.CalendarFeedIssued(
        feed_id=feed_id,
        owner=body.owner,
        scope=body.scope,
        department=actor.department,
        roles=tuple(sorted(actor.roles)),
        language=body.language,
        secret_sha256=secret_sha256,
    )


def may_keep(feed: Feed, actor: Actor) -> bool:
    """Whether ``actor`` may see, rotate and revoke ``feed``."""
    if feed.reader.user == actor.user or actor.has(Role.ADMIN):
        return True
    return feed.owner == "department" and feed.reader.department == actor.department and can_write(actor)


def entries(schedule: Schedule, feed: Feed) -> list[Entry]:
    """Every open deadline the feed shows, soonest first."""
    reader, everything = feed.reader, feed.scope == "all" and can_read_everything(feed.reader)

    def shown(departments: Iterable[Department]) -> bool:
        return everything or reader.department in departments

    found: list[Entry] = []
    for task_id, task in schedule.tasks.items():
        if task.open and task.due is not None and shown(task.departments):
            found.append(Entry(f"task-{task_id}@policytrack", "task_due", task.title, task.due, task_id))
    for deadline in schedule.deadlines.values():
        if deadline.milestone_id is not None and shown(deadline.departments):
            uid = f"milestone-{deadline.milestone_id}@policytrack"
            found.append(Entry(uid, "milestone_due", deadline.title, deadline.due, deadline.task_id))
    for part in schedule.support.watched.values():
        if shown((part.department,)):
            uid = f"support-{part.request_id}-{part.department}@policytrack"
            found.append(
                Entry(uid, "support_answer_by", part.title, part.answer_by, part.task_id, detail=part.department)
            )
    if shown((Department.NDRC,)):
        for plan_id, cadence in schedule.cadences.items():
            if (due := cadence.next_due()) is not None:
                title = schedule.plans.get(plan_id, plan_id)
                found.append(Entry(f"evaluation-{plan_id}@policytrack", "evaluation_due", title, due, detail=plan_id))
    return sorted(found, key=lambda entry: (entry.due, entry.uid))
