"""What the plan overview shows: progress per field of cooperation, tasks by health, late
milestones, open and escalated issues, pending approvals. Pure: states and trail entries in."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from shared.contract.catalog import short_type
from shared.contract.codes import TaskHealth
from shared.domain.progress import FieldProgress, field_progress
from shared.domain.state import Task, TaskStatus

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
    reported_at: str
    escalated: bool = False


@dataclass(frozen=True)
class PendingApproval:
    approval_id: str
    task_id: str
    kind: str
    title: str
    requested_at: str


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


def overview(tasks: list[Task], entries: Iterable[Mapping[str, Any]], now: datetime) -> Overview:
    """``entries`` are the trail's issue and approval events (as the audit API gives them)."""
    events = [entry["event"] for entry in entries if entry.get("event")]
    return Overview(
        fields=field_progress(tasks, now),
        by_health=by_health(tasks),
        late_milestones=late_milestones(tasks, now),
        issues=open_issues(events),
        approvals=pending_approvals(events),
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


def open_issues(events: Iterable[Mapping[str, Any]]) -> list[OpenIssue]:
    """Issues reported and not resolved, marked when escalated; newest first."""
    issues: dict[str, OpenIssue] = {}
    for event in events:
        kind, data = short_type(event["type"]), event.get("data") or {}
        issue_id = str(data.get("issue_id", ""))
        if kind == "issue.reported":
            issues[issue_id] = OpenIssue(
                issue_id, data["task_id"], data["title"], data["severity"], event.get("time", "")
            )
        elif kind == "issue.escalated" and issue_id in issues:
            reported = issues[issue_id]
            issues[issue_id] = replace(reported, escalated=True)
        elif kind == "issue.resolved":
            issues.pop(issue_id, None)
    return sorted(issues.values(), key=lambda i: i.reported_at, reverse=True)


def pending_approvals(events: Iterable[Mapping[str, Any]]) -> list[PendingApproval]:
    """Approvals requested and not yet granted or rejected; oldest first."""
    pending: dict[str, PendingApproval] = {}
    for event in events:
        kind, data = short_type(event["type"]), event.get("data") or {}
        if kind == "approval.requested":
            pending[data["approval_id"]] = PendingApproval(
                data["approval_id"], data["task_id"], data["kind"], data["title"], event.get("time", "")
            )
        elif kind in ("approval.granted", "approval.rejected"):
            pending.pop(str(data.get("approval_id", "")), None)
    return sorted(pending.values(), key=lambda a: a.requested_at)


ISSUE_AND_APPROVAL_TYPES = (
    "issue.reported",
    "issue.escalated",
    "issue.resolved",
    "approval.requested",
    "approval.granted",
    "approval.rejected",
)
