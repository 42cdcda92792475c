"""``evolve(state, event) -> state`` for every aggregate, and the projection of the whole log."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from shared.contract import catalog as c
from shared.contract.envelope import CloudEvent
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


A = TypeVar("A", Plan, Task, Issue, Approval, Evaluation)
S = TypeVar("S", Plan, Task, Issue, Approval, Evaluation, Milestone)


class EvolveError(ValueError):
    """An event that cannot follow the state it is applied to (a gap or a foreign event)."""


def evolve(state: Aggregate | None, event: CloudEvent) -> Aggregate:
    """The state after ``event``. ``state`` is None before the aggregate's first event."""
    data = event.data
    if state is None:
        return _create(data, event)
    changes = _change(state, data, event)
    return _replace(state, {**changes, "version": state.version + 1, "updated_at": event.time})


def _replace(state: S, changes: dict[str, object]) -> S:
    """``state.model_copy(update=changes)`` without its three dictionary copies: replaying a
    long log calls this once per event. The changes come from validated events, as with
    model_copy, which does not validate either."""
    replaced = state.__class__.__new__(state.__class__)
    object.__setattr__(replaced, "__dict__", {**state.__dict__, **changes})
    object.__setattr__(replaced, "__pydantic_fields_set__", state.__pydantic_fields_set__ | changes.keys())
    object.__setattr__(replaced, "__pydantic_extra__", None)
    object.__setattr__(replaced, "__pydantic_private__", None)
    return replaced


def _create(data: c.EventData, event: CloudEvent) -> Aggregate:
    common = {"version": 1, "created_at": event.time, "updated_at": event.time}
    match data:
        case c.PlanApproved():
            return Plan(plan_id=data.plan_id, title=data.title, summary=data.summary, approved_by=event.actor,
                        **common)  # fmt: skip
        case c.TaskCreated():
            return Task(task_id=data.task_id, plan_id=data.plan_id, title=data.title, field=data.field, due=data.due,
                        created_by=event.actor, **common)  # fmt: skip
        case c.IssueReported():
            return Issue(issue_id=data.issue_id, task_id=data.task_id, title=data.title, severity=data.severity,
                         detail=data.detail, reported_by=event.actor, reported_by_department=event.actordept,
                         **common)  # fmt: skip
        case c.ApprovalRequested():
            return Approval(approval_id=data.approval_id, task_id=data.task_id, kind=data.kind, title=data.title,
                            detail=data.detail, requested_by=event.actor, **common)  # fmt: skip
        case c.EvaluationRecorded():
            return Evaluation(evaluation_id=data.evaluation_id, task_id=data.task_id, rating=data.rating,
                              findings=data.findings, evaluated_by=event.actor, **common)  # fmt: skip
    raise EvolveError(f"{event.type} cannot start an aggregate")


def _change(state: Aggregate, data: c.EventData, event: CloudEvent) -> dict[str, object]:
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
            return {"milestones": tuple(
                _replace(m, {"met_at": event.time, "met_by": event.actor}) if m.milestone_id == data.milestone_id
                else m for m in state.milestones
            )}  # fmt: skip
        case Issue(), c.IssueEscalated():
            return {"status": IssueStatus.ESCALATED, "escalated_to": data.escalated_to, "escalated_by": event.actor}
        case Issue(), c.IssueResolved():
            return {"status": IssueStatus.RESOLVED, "resolution": data.resolution}
        case Approval(), c.ApprovalGranted():
            return {"status": ApprovalStatus.GRANTED, "decided_by": event.actor, "reason": data.reason}
        case Approval(), c.ApprovalRejected():
            return {"status": ApprovalStatus.REJECTED, "decided_by": event.actor, "reason": data.reason}
    raise EvolveError(f"{event.type} does not apply to {type(state).__name__} {event.subject}")


DOMAIN_TYPES = frozenset(
    cls.event_type
    for cls in (
        c.PlanApproved, c.PlanAmended, c.TaskCreated, c.TaskAssigned, c.TaskReassigned, c.TaskDeadlineChanged,
        c.TaskProgressReported, c.TaskCompleted, c.TaskCancelled, c.MilestoneScheduled, c.MilestoneMet,
        c.IssueReported, c.IssueEscalated, c.IssueResolved, c.ApprovalRequested, c.ApprovalGranted,
        c.ApprovalRejected, c.EvaluationRecorded,
    )
)  # fmt: skip
"""The event types that change an aggregate; everything else on the log leaves state alone."""


@dataclass
class Projection:
    """Every aggregate's current state, folded from the log with ``evolve``.

    ``apply`` ignores what it has already seen (a re-delivered event carries an aggregate
    version at or below the state's), so replaying a log twice changes nothing.
    """

    aggregates: dict[str, Aggregate] = field(default_factory=dict)
    history: dict[str, list[CloudEvent]] = field(default_factory=dict)
    """Per task id: every event about the task (its own, and its issues', approvals', evaluations')."""
    last_event_time: datetime | None = None

    def apply(self, event: CloudEvent) -> bool:
        """Fold one event in; False when it was already applied or does not change state."""
        if event.type not in DOMAIN_TYPES:
            return False
        current = self.aggregates.get(event.subject)
        if current is not None and event.aggregateversion is not None and event.aggregateversion <= current.version:
            return False
        self.aggregates[event.subject] = evolve(current, event)
        self.history.setdefault(_task_of(event), []).append(event)
        self.last_event_time = event.time
        return True

    def preview(self, events: Iterable[CloudEvent]) -> dict[str, Aggregate]:
        """The states ``events`` would lead to, leaving the projection as it is: a write evolves
        its events before it appends them, so an event that cannot be applied is never appended."""
        states: dict[str, Aggregate] = {}
        for event in events:
            if event.type in DOMAIN_TYPES:
                states[event.subject] = evolve(states.get(event.subject) or self.aggregates.get(event.subject), event)
        return states

    def adopt(self, events: Iterable[CloudEvent], states: dict[str, Aggregate]) -> None:
        """Takes in the states ``preview`` computed, once their events are on the log."""
        self.aggregates.update(states)
        for event in events:
            if event.type in DOMAIN_TYPES:
                self.history.setdefault(_task_of(event), []).append(event)
                self.last_event_time = event.time

    def apply_all(self, events: Iterable[CloudEvent]) -> None:
        for event in events:
            self.apply(event)

    def kind_of(self, aggregate_id: str) -> str | None:
        """The type of the aggregate with this id, if there is one."""
        found = self.aggregates.get(aggregate_id)
        return None if found is None else type(found).__name__

    def get(self, aggregate_id: str, kind: type[A]) -> A | None:
        found = self.aggregates.get(aggregate_id)
        return found if isinstance(found, kind) else None

    def plan(self, plan_id: str) -> Plan | None:
        return self.get(plan_id, Plan)

    def task(self, task_id: str) -> Task | None:
        return self.get(task_id, Task)

    def issue(self, issue_id: str) -> Issue | None:
        return self.get(issue_id, Issue)

    def approval(self, approval_id: str) -> Approval | None:
        return self.get(approval_id, Approval)

    def evaluation(self, evaluation_id: str) -> Evaluation | None:
        return self.get(evaluation_id, Evaluation)

    def tasks(self) -> list[Task]:
        return [a for a in self.aggregates.values() if isinstance(a, Task)]


def _task_of(event: CloudEvent) -> str:
    return str(getattr(event.data, "task_id", event.subject))
