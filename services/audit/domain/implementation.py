"""The NDRC's report to the State Council on a period, worked out from a replay of the trail up
to the period's end. Pure: the same replay always gives the same report, byte for byte, which is
what its SHA-256 on ``report.submitted`` proves."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.audit.domain.accounts import overdue_evaluations, responsibility, task_line
from shared.contract import catalog as c
from shared.contract.codes import Severity, TaskHealth
from shared.contract.envelope import AnyEvent
from shared.domain.progress import field_progress
from shared.domain.projection import Projection
from shared.domain.state import Issue, SupportRequest


@dataclass
class Replay:
    """The trail folded up to a moment, and what happened within the period."""

    projection: Projection = field(default_factory=Projection)
    acts: Counter[str] = field(default_factory=Counter)
    escalations: Counter[str] = field(default_factory=Counter)
    in_period: list[AnyEvent] = field(default_factory=list)
    """The events of the period that the report lists one by one (``LISTED``)."""


LISTED = (c.ApprovalGranted, c.ApprovalRejected, c.EvaluationRecorded)
"""What the report lists one by one: the decisions on approvals and the evaluations."""


def implementation_report(replay: Replay, period_from: datetime, period_to: datetime) -> dict[str, Any]:
    projection = replay.projection
    open_tasks = [t for t in projection.tasks() if t.is_open]
    return {
        "period": {"from": period_from.isoformat(), "to": period_to.isoformat()},
        "plans": [_plan_line(projection, plan.plan_id) for plan in sorted(projection.plans(), key=lambda p: p.plan_id)],
        "fields": _fields(projection, period_to),
        "tasks_late": [task_line(t) for t in sorted(open_tasks, key=lambda t: t.task_id) if t.is_overdue(period_to)],
        "tasks_at_risk": [
            task_line(t)
            for t in sorted(open_tasks, key=lambda t: t.task_id)
            if t.health is TaskHealth.AT_RISK and not t.is_overdue(period_to)
        ],
        "major_issues": _major_issues(projection),
        "approvals_decided": [
            _decision(e) for e in replay.in_period if isinstance(e.data, c.ApprovalGranted | c.ApprovalRejected)
        ],
        "evaluations": [_evaluation(e) for e in replay.in_period if isinstance(e.data, c.EvaluationRecorded)],
        "evaluations_overdue": [p.plan_id for p in overdue_evaluations(projection)],
        "departments": responsibility(projection, replay.acts, replay.escalations, period_to),
    }


def _plan_line(projection: Projection, plan_id: str) -> dict[str, Any]:
    plan = projection.plan(plan_id)
    assert plan is not None
    last = projection.last_plan_evaluation(plan_id)
    return {
        "plan_id": plan.plan_id,
        "title": plan.title,
        "evaluation_interval_months": plan.evaluation_interval_months,
        "evaluation_due": plan.evaluation_due and plan.evaluation_due.isoformat(),
        "last_evaluated_at": last and last.isoformat(),
    }


def _fields(projection: Projection, at: datetime) -> dict[str, dict[str, Any]]:
    """Per field of cooperation: how many tasks, their average progress, done, late, at risk."""
    return {
        str(row.field): {
            "tasks": row.tasks,
            "average_percent": row.average_percent,
            "done": row.done,
            "late": row.late,
            "at_risk": row.at_risk,
        }
        for row in field_progress(list(projection.tasks()), at)
    }


def _major_issues(projection: Projection) -> list[dict[str, Any]]:
    issues = [a for a in projection.aggregates.values() if isinstance(a, Issue) and a.severity is Severity.MAJOR]
    requests = [a for a in projection.aggregates.values() if isinstance(a, SupportRequest)]
    return [
        {
            "issue_id": issue.issue_id,
            "task_id": issue.task_id,
            "title": issue.title,
            "status": str(issue.status),
            "reported_by_department": issue.reported_by_department and str(issue.reported_by_department),
            "escalated_to": issue.escalated_to and str(issue.escalated_to),
            "resolution": issue.resolution,
            "support_requests": [
                _request_line(r) for r in sorted(requests, key=lambda r: r.request_id) if r.issue_id == issue.issue_id
            ],
        }
        for issue in sorted(issues, key=lambda i: i.issue_id)
    ]


def _request_line(request: SupportRequest) -> dict[str, Any]:
    return {
        "request_id": request.request_id,
        "need": request.need,
        "by": request.by.isoformat(),
        "closed": not request.is_open,
        "departments": [
            {"department": str(a.department), "state": str(a.state), "answer": a.answer, "reason": a.reason}
            for a in request.answers
        ],
    }


def _decision(event: AnyEvent) -> dict[str, Any]:
    data = event.data
    assert isinstance(data, c.ApprovalGranted | c.ApprovalRejected)
    return {
        "approval_id": data.approval_id,
        "task_id": data.task_id,
        "granted": isinstance(data, c.ApprovalGranted),
        "reason": data.reason,
        "decided_by": event.actor,
        "at": event.time.isoformat(),
    }


def _evaluation(event: AnyEvent) -> dict[str, Any]:
    data = event.data
    assert isinstance(data, c.EvaluationRecorded)
    return {
        "evaluation_id": data.evaluation_id,
        "task_id": data.task_id,
        "plan_id": data.plan_id,
        "rating": str(data.rating),
        "findings": data.findings,
        "by": event.actor,
        "at": event.time.isoformat(),
    }
