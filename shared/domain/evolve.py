"""``evolve(state, event) -> state`` for every aggregate: how each event changes it. Pure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

from shared.contract import catalog as c
from shared.contract.envelope import AnyEvent
from shared.domain.health import TREND_WINDOW
from shared.domain.state import (
    Aggregate,
    AnswerState,
    Approval,
    ApprovalStatus,
    DepartmentAnswer,
    Evaluation,
    Issue,
    IssueStatus,
    Milestone,
    Plan,
    ProgressPoint,
    SupportRequest,
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
    return Plan(
        plan_id=data.plan_id,
        title=data.title,
        summary=data.summary,
        approved_by=event.actor,
        document_number=data.document_number,
        evaluation_interval_months=data.evaluation_interval_months,
        **_origin(event),
    )


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
        evidence=data.evidence,
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
        plan_id=data.plan_id,
        rating=data.rating,
        findings=data.findings,
        evaluated_by=event.actor,
        evidence=data.evidence,
        **_origin(event),
    )


def _support_request(data: c.SupportRequested, event: AnyEvent) -> SupportRequest:
    return SupportRequest(
        request_id=data.request_id,
        issue_id=data.issue_id,
        task_id=data.task_id,
        need=data.need,
        by=data.by,
        requested_by=event.actor,
        requested_by_department=event.actordept,
        answers=tuple(DepartmentAnswer(department=d) for d in data.departments),
        **_origin(event),
    )


_CREATES: dict[type[c.EventData], Callable[[Any, AnyEvent], Aggregate]] = {
    c.PlanApproved: _plan,
    c.TaskCreated: _task,
    c.IssueReported: _issue,
    c.ApprovalRequested: _approval,
    c.EvaluationRecorded: _evaluation,
    c.SupportRequested: _support_request,
}


def _change(state: Aggregate, data: c.EventData, event: AnyEvent) -> dict[str, object]:
    changes = _task_change(state, data, event) if isinstance(state, Task) else _other_change(state, data, event)
    if changes is None:
        raise EvolveError(f"{event.type} does not apply to {type(state).__name__} {event.subject}")
    return changes


def _task_change(task: Task, data: c.EventData, event: AnyEvent) -> dict[str, object] | None:
    match data:
        case c.TaskAssigned() | c.TaskReassigned():
            return {"lead_department": data.lead_department, "supporting_departments": data.supporting_departments}
        case c.TaskDeadlineChanged():
            return {"due": data.due}
        case c.TaskProgressReported():
            point = ProgressPoint(at=event.time, percent=data.percent)
            recent = (*task.recent_progress, point)[-TREND_WINDOW:]
            evidence = (*task.evidence, *data.evidence)
            return {
                "percent": data.percent,
                "progress_note": data.note,
                "recent_progress": recent,
                "evidence": evidence,
            }
        case c.TaskHealthChanged():
            return {"health": data.health, "health_reason": data.reason}
        case c.TaskCompleted():
            return {"status": TaskStatus.COMPLETED, "percent": 100, "closed_at": event.time}
        case c.TaskCancelled():
            return {"status": TaskStatus.CANCELLED, "closed_at": event.time}
        case c.MilestoneScheduled():
            milestone = Milestone(milestone_id=data.milestone_id, title=data.title, due=data.due)
            return {"milestones": (*task.milestones, milestone)}
        case c.MilestoneMet():
            return {"milestones": _met(task.milestones, data, event)}
    return None


def _other_change(state: Aggregate, data: c.EventData, event: AnyEvent) -> dict[str, object] | None:
    match state, data:
        case Plan(), c.PlanAmended():
            interval = {"evaluation_interval_months": data.evaluation_interval_months}
            return {
                "summary": data.summary,
                **({"title": data.title} if data.title else {}),
                **(interval if data.evaluation_interval_months else {}),
            }
        case Plan(), c.PlanEvaluationDue():
            return {"evaluation_due": data.due}
        case Issue(), c.IssueEscalated():
            return {"status": IssueStatus.ESCALATED, "escalated_to": data.escalated_to, "escalated_by": event.actor}
        case Issue(), c.IssueResolved():
            return {"status": IssueStatus.RESOLVED, "resolution": data.resolution}
        case Approval(), c.ApprovalGranted() | c.ApprovalRejected():
            granted = isinstance(data, c.ApprovalGranted)
            status = ApprovalStatus.GRANTED if granted else ApprovalStatus.REJECTED
            return {"status": status, "decided_by": event.actor, "reason": data.reason}
        case SupportRequest(), c.SupportAcknowledged() | c.SupportAnswered() | c.SupportDeclined():
            return {"answers": _answered(state.answers, data, event)}
        case SupportRequest(), c.SupportRequestClosed():
            return {"closed_at": event.time}
    return None


def _answered(
    answers: tuple[DepartmentAnswer, ...], data: c.EventData, event: AnyEvent
) -> tuple[DepartmentAnswer, ...]:
    department = getattr(data, "department", None)
    match data:
        case c.SupportAcknowledged():
            update: dict[str, object] = {"state": AnswerState.ACKNOWLEDGED, "acknowledged_at": event.time}
        case c.SupportAnswered():
            update = {
                "state": AnswerState.ANSWERED,
                "answered_at": event.time,
                "answer": data.answer,
                "evidence": data.evidence,
            }
        case c.SupportDeclined():
            update = {"state": AnswerState.DECLINED, "answered_at": event.time, "reason": data.reason}
        case _:
            raise EvolveError(f"{event.type} is not a department's answer")
    return tuple(
        a.model_copy(update={**update, "acknowledged_at": a.acknowledged_at or event.time})
        if a.department == department
        else a
        for a in answers
    )


def _met(milestones: tuple[Milestone, ...], data: c.MilestoneMet, event: AnyEvent) -> tuple[Milestone, ...]:
    return tuple(
        m.model_copy(update={"met_at": event.time, "met_by": event.actor, "evidence": data.evidence})
        if m.milestone_id == data.milestone_id
        else m
        for m in milestones
    )


DOMAIN_TYPES = frozenset(
    version
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
        c.TaskHealthChanged,
        c.PlanEvaluationDue,
        c.SupportRequested,
        c.SupportAcknowledged,
        c.SupportAnswered,
        c.SupportDeclined,
        c.SupportRequestClosed,
    )
    for version in c.versions_of(cls.event_type)
)
"""Every type, in every version the log may hold, that changes the state."""
"""The event types that change an aggregate; everything else on the log leaves state alone."""
