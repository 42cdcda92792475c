"""``evolve(state, event) -> state`` for every aggregate: how each event changes it. Pure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

from shared.contract import catalog as c
from shared.contract.envelope import AnyEvent
from shared.domain.state import (
    Aggregate,
    Approval,
    ApprovalStatus,
    Evaluation,
    Issue,
    IssueStatus,
    Milestone,
    Plan,
    Task,
    TaskStatus,
)


class EvolveError(ValueError):
    """An event that cannot follow the state it is applied to (a gap or a foreign event)."""


def evolve(state: Aggregate | None, event: AnyEvent) -> Aggregate:
    """The state after ``event``. ``state`` is None before the aggregate's first event."""
    if state is None:
        create = _CREATES.get(type(event.data))
        if create is None:
            raise EvolveError(f"{event.type} cannot start an aggregate")
        return create(event.data, event)
    changes = _change(state, event.data, event)
    return state.model_copy(update={**changes, "version": state.version + 1, "updated_at": event.time})


class _Origin(TypedDict):
    version: int
    created_at: Any
    updated_at: Any


def _origin(event: AnyEvent) -> _Origin:
    return {"version": 1, "created_at": event.time, "updated_at": event.time}


def _plan(data: c.PlanApproved, event: AnyEvent) -> Plan:
    return Plan(plan_id=data.plan_id, title=data.title, summary=data.summary, approved_by=event.actor, **_origin(event))


def _task(data: c.TaskCreated, event: AnyEvent) -> Task:
    return Task(
        task_id=data.task_id,
        plan_id=data.plan_id,
        title=data.title,
        field=data.field,
        due=data.due,
        created_by=event.actor,
        **_origin(event),
    )


def _issue(data: c.IssueReported, event: AnyEvent) -> Issue:
    return Issue(
        issue_id=data.issue_id,
        task_id=data.task_id,
        title=data.title,
        severity=data.severity,
        detail=data.detail,
        reported_by=event.actor,
        reported_by_department=event.actordept,
        **_origin(event),
    )


def _approval(data: c.ApprovalRequested, event: AnyEvent) -> Approval:
    return Approval(
        approval_id=data.approval_id,
        task_id=data.task_id,
        kind=data.kind,
        title=data.title,
        detail=data.detail,
        requested_by=event.actor,
        **_origin(event),
    )


def _evaluation(data: c.EvaluationRecorded, event: AnyEvent) -> Evaluation:
    return Evaluation(
        evaluation_id=data.evaluation_id,
        task_id=data.task_id,
        rating=data.rating,
        findings=data.findings,
        evaluated_by=event.actor,
        **_origin(event),
    )


_CREATES: dict[type[c.EventData], Callable[[Any, AnyEvent], Aggregate]] = {
    c.PlanApproved: _plan,
    c.TaskCreated: _task,
    c.IssueReported: _issue,
    c.ApprovalRequested: _approval,
    c.EvaluationRecorded: _evaluation,
}


def _change(state: Aggregate, data: c.EventData, event: AnyEvent) -> dict[str, object]:
    match state, data:
        case Plan(), c.PlanAmended():
            return {"summary": data.summary, **({"title": data.title} if data.title else {})}
        case Task(), c.TaskAssigned() | c.TaskReassigned():
            return {"lead_department": data.lead_department, "supporting_departments": data.supporting_departments}
        case Task(), c.TaskDeadlineChanged():
            return {"due": data.due}
        case Task(), c.TaskProgressReported():
            return {"percent": data.percent, "progress_note": data.note}
        case Task(), c.TaskCompleted():
            return {"status": TaskStatus.COMPLETED, "percent": 100, "closed_at": event.time}
        case Task(), c.TaskCancelled():
            return {"status": TaskStatus.CANCELLED, "closed_at": event.time}
        case Task(), c.MilestoneScheduled():
            milestone = Milestone(milestone_id=data.milestone_id, title=data.title, due=data.due)
            return {"milestones": (*state.milestones, milestone)}
        case Task(), c.MilestoneMet():
            return {"milestones": _met(state.milestones, data.milestone_id, event)}
        case Issue(), c.IssueEscalated():
            return {"status": IssueStatus.ESCALATED, "escalated_to": data.escalated_to, "escalated_by": event.actor}
        case Issue(), c.IssueResolved():
            return {"status": IssueStatus.RESOLVED, "resolution": data.resolution}
        case Approval(), c.ApprovalGranted():
            return {"status": ApprovalStatus.GRANTED, "decided_by": event.actor, "reason": data.reason}
        case Approval(), c.ApprovalRejected():
            return {"status": ApprovalStatus.REJECTED, "decided_by": event.actor, "reason": data.reason}
    raise EvolveError(f"{event.type} does not apply to {type(state).__name__} {event.subject}")


def _met(milestones: tuple[Milestone, ...], milestone_id: str, event: AnyEvent) -> tuple[Milestone, ...]:
    return tuple(
        m.model_copy(update={"met_at": event.time, "met_by": event.actor}) if m.milestone_id == milestone_id else m
        for m in milestones
    )


DOMAIN_TYPES = frozenset(
    cls.event_type
    for cls in (
        c.PlanApproved,
        c.PlanAmended,
        c.TaskCreated,
        c.TaskAssigned,
        c.TaskReassigned,
        c.TaskDeadlineChanged,
        c.TaskProgressReported,
        c.TaskCompleted,
        c.TaskCancelled,
        c.MilestoneScheduled,
        c.MilestoneMet,
        c.IssueReported,
        c.IssueEscalated,
        c.IssueResolved,
        c.ApprovalRequested,
        c.ApprovalGranted,
        c.ApprovalRejected,
        c.EvaluationRecorded,
    )
)
"""The event types that change an aggregate; everything else on the log leaves state alone."""
