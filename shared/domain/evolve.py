"""``evolve(state, event) -> state`` for every aggregate: how each event changes it. Pure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

from shared.contract import catalog as c
from shared.contract.envelope import AnyEvent
from shared.contract.mirror import assembled
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
    replaced,
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
    change = _CHANGES.get((type(state), type(event.data)))
    if change is None:
        raise EvolveError(f"{event.type} does not apply to {type(state).__name__} {event.subject}")
    changes = change(state, event.data, event)
    return replaced(state, {**changes, "version": state.version + 1, "updated_at": event.time})


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


Changes = dict[str, object]
Change = Callable[[Any, Any, AnyEvent], Changes]
"""How one event changes one kind of aggregate: the fields it sets. Looked up by the state's
and the data's exact types (one dictionary lookup: evolve runs for every event read)."""


def _assigned(_: Task, data: c.TaskAssigned | c.TaskReassigned, __: AnyEvent) -> Changes:
    return {"lead_department": data.lead_department, "supporting_departments": data.supporting_departments}


def _deadline_changed(_: Task, data: c.TaskDeadlineChanged, __: AnyEvent) -> Changes:
    return {"due": data.due}


_POINT_FIELDS = frozenset(ProgressPoint.model_fields)


def _progress_reported(task: Task, data: c.TaskProgressReported, event: AnyEvent) -> Changes:
    # Unchecked: both values come from the checked event, and this runs for every report read.
    point = assembled(ProgressPoint, {"at": event.time, "percent": data.percent}, _POINT_FIELDS)
    return {
        "percent": data.percent,
        "progress_note": data.note,
        "recent_progress": (*task.recent_progress, point)[-TREND_WINDOW:],
        "evidence": (*task.evidence, *data.evidence),
    }


def _health_changed(_: Task, data: c.TaskHealthChanged, __: AnyEvent) -> Changes:
    return {"health": data.health, "health_reason": data.reason}


def _completed(_: Task, __: c.TaskCompleted, event: AnyEvent) -> Changes:
    return {"status": TaskStatus.COMPLETED, "percent": 100, "closed_at": event.time}


def _cancelled(_: Task, __: c.TaskCancelled, event: AnyEvent) -> Changes:
    return {"status": TaskStatus.CANCELLED, "closed_at": event.time}


def _milestone_scheduled(task: Task, data: c.MilestoneScheduled, _: AnyEvent) -> Changes:
    milestone = Milestone(milestone_id=data.milestone_id, title=data.title, due=data.due)
    return {"milestones": (*task.milestones, milestone)}


def _milestone_met(task: Task, data: c.MilestoneMet, event: AnyEvent) -> Changes:
    met = {"met_at": event.time, "met_by": event.actor, "evidence": data.evidence}
    return {
        "milestones": tuple(replaced(m, met) if m.milestone_id == data.milestone_id else m for m in task.milestones)
    }


def _plan_amended(_: Plan, data: c.PlanAmended, __: AnyEvent) -> Changes:
    interval = {"evaluation_interval_months": data.evaluation_interval_months}
    return {
        "summary": data.summary,
        **({"title": data.title} if data.title else {}),
        **(interval if data.evaluation_interval_months else {}),
    }


def _plan_evaluation_due(_: Plan, data: c.PlanEvaluationDue, __: AnyEvent) -> Changes:
    return {"evaluation_due": data.due}


def _issue_escalated(_: Issue, data: c.IssueEscalated, event: AnyEvent) -> Changes:
    return {"status": IssueStatus.ESCALATED, "escalated_to": data.escalated_to, "escalated_by": event.actor}


def _issue_resolved(_: Issue, data: c.IssueResolved, __: AnyEvent) -> Changes:
    return {"status": IssueStatus.RESOLVED, "resolution": data.resolution}


def _approval_decided(_: Approval, data: c.ApprovalGranted | c.ApprovalRejected, event: AnyEvent) -> Changes:
    granted = isinstance(data, c.ApprovalGranted)
    status = ApprovalStatus.GRANTED if granted else ApprovalStatus.REJECTED
    return {"status": status, "decided_by": event.actor, "reason": data.reason}


def _department_answered(request: SupportRequest, data: DepartmentReply, event: AnyEvent) -> Changes:
    update = _reply(data, event)
    return {
        "answers": tuple(
            replaced(a, {**update, "acknowledged_at": a.acknowledged_at or event.time})
            if a.department == data.department
            else a
            for a in request.answers
        )
    }


DepartmentReply = c.SupportAcknowledged | c.SupportAnswered | c.SupportDeclined


def _reply(data: DepartmentReply, event: AnyEvent) -> Changes:
    match data:
        case c.SupportAcknowledged():
            return {"state": AnswerState.ACKNOWLEDGED}
        case c.SupportAnswered():
            return {
                "state": AnswerState.ANSWERED,
                "answered_at": event.time,
                "answer": data.answer,
                "evidence": data.evidence,
            }
        case c.SupportDeclined():
            return {"state": AnswerState.DECLINED, "answered_at": event.time, "reason": data.reason}


def _support_request_closed(_: SupportRequest, __: c.SupportRequestClosed, event: AnyEvent) -> Changes:
    return {"closed_at": event.time}


_CHANGES: dict[tuple[type[Aggregate], type[c.EventData]], Change] = {
    (Task, c.TaskAssigned): _assigned,
    (Task, c.TaskReassigned): _assigned,
    (Task, c.TaskDeadlineChanged): _deadline_changed,
    (Task, c.TaskProgressReported): _progress_reported,
    (Task, c.TaskHealthChanged): _health_changed,
    (Task, c.TaskCompleted): _completed,
    (Task, c.TaskCancelled): _cancelled,
    (Task, c.MilestoneScheduled): _milestone_scheduled,
    (Task, c.MilestoneMet): _milestone_met,
    (Plan, c.PlanAmended): _plan_amended,
    (Plan, c.PlanEvaluationDue): _plan_evaluation_due,
    (Issue, c.IssueEscalated): _issue_escalated,
    (Issue, c.IssueResolved): _issue_resolved,
    (Approval, c.ApprovalGranted): _approval_decided,
    (Approval, c.ApprovalRejected): _approval_decided,
    (SupportRequest, c.SupportAcknowledged): _department_answered,
    (SupportRequest, c.SupportAnswered): _department_answered,
    (SupportRequest, c.SupportDeclined): _department_answered,
    (SupportRequest, c.SupportRequestClosed): _support_request_closed,
}


DOMAIN_TYPES = frozenset(
    version for cls in (*_CREATES, *(data for _, data in _CHANGES)) for version in c.versions_of(cls.event_type)
)
"""Every type, in every version the log may hold, that changes the state."""
