"""What the plan overview shows: progress per field of cooperation, tasks by health, late
milestones, open and escalated issues, pending approvals. Pure: states and events in."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from shared.contract.codes import TaskHealth
from shared.contract.envelope import AnyEvent
from shared.domain.evolve import EvolveError
from shared.domain.progress import FieldProgress, field_progress
from shared.domain.projection import Projection
from shared.domain.state import Approval, ApprovalStatus, Issue, IssueStatus, Task, TaskStatus

CANCELLED = "cancelled"


@dataclass(frozen=True)
class LateMilestone:
    task_id: str
    task_title: str
    title: str
    due: datetime
    lead: str


@dataclass(frozen=True)
class OpenIssue:
    issue_id: str
    task_id: str
    title: str
    severity: str
    reported_at: datetime
    escalated: bool = False


@dataclass(frozen=True)
class PendingApproval:
    approval_id: str
    task_id: str
    kind: str
    title: str
    requested_at: datetime


@dataclass(frozen=True)
class Overview:
    fields: list[FieldProgress]
    by_health: dict[str, int]
    late_milestones: list[LateMilestone]
    issues: list[OpenIssue]
    approvals: list[PendingApproval]

    @property
    def escalated(self) -> list[OpenIssue]:
        return [issue for issue in self.issues if issue.escalated]


def overview(tasks: list[Task], events: Iterable[AnyEvent], now: datetime) -> Overview:
    """``events`` are the trail's issue and approval events in log order, folded with the shared
    ``evolve`` as every other reader of the log folds them."""
    folded = Projection()
    for event in events:
        # An event whose aggregate began where this reader may not look (or before the trail
        # it was given) leaves the overview as it is.
        with contextlib.suppress(EvolveError):
            folded.apply(event)
    return Overview(
        fields=field_progress(tasks, now),
        by_health=by_health(tasks),
        late_milestones=late_milestones(tasks, now),
        issues=open_issues(folded.issues()),
        approvals=pending_approvals(folded.approvals()),
    )


def by_health(tasks: list[Task]) -> dict[str, int]:
    counts = Counter(CANCELLED if t.status is TaskStatus.CANCELLED else str(t.health) for t in tasks)
    return {name: counts.get(name, 0) for name in (*(str(h) for h in TaskHealth), CANCELLED)}


def late_milestones(tasks: list[Task], now: datetime) -> list[LateMilestone]:
    """Open milestones past their due date, the longest overdue first."""
    late = [
        LateMilestone(t.task_id, t.title, m.title, m.due, str(t.lead_department or ""))
        for t in tasks
        if t.status is not TaskStatus.CANCELLED
        for m in t.milestones
        if m.met_at is None and m.due < now
    ]
    return sorted(late, key=lambda m: m.due)


def open_issues(issues: Iterable[Issue]) -> list[OpenIssue]:
    """Issues reported and not resolved, marked when escalated; newest first."""
    shown = [
        OpenIssue(i.issue_id, i.task_id, i.title, str(i.severity), i.created_at, i.status is IssueStatus.ESCALATED)
        for i in issues
        if i.status is not IssueStatus.RESOLVED
    ]
    return sorted(shown, key=lambda i: i.reported_at, reverse=True)


def pending_approvals(approvals: Iterable[Approval]) -> list[PendingApproval]:
    """Approvals requested and not yet granted or rejected; oldest first."""
    pending = [
        PendingApproval(a.approval_id, a.task_id, str(a.kind), a.title, a.created_at)
        for a in approvals
        if a.status is ApprovalStatus.REQUESTED
    ]
    return sorted(pending, key=lambda a: a.requested_at)


ISSUE_AND_APPROVAL_TYPES = (
    "issue.reported",
    "issue.escalated",
    "issue.resolved",
    "approval.requested",
    "approval.granted",
    "approval.rejected",
)
