"""State of the aggregates: Plan, Task (with its milestones), Issue, Approval, Evaluation,
SupportRequest."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

from shared.contract.catalog import Evidence
from shared.contract.codes import ApprovalKind, CooperationField, Department, Rating, Severity, TaskHealth
from shared.contract.mirror import assembled

M = TypeVar("M", bound=BaseModel)


def replaced(model: M, changes: Mapping[str, object]) -> M:
    """``model`` with ``changes``, as ``model.model_copy(update=changes)`` makes it (unchecked:
    ``evolve``'s values come from checked events) for half the cost: it runs for every event read."""
    return assembled(type(model), {**model.__dict__, **changes}, model.__pydantic_fields_set__ | changes.keys())


class State(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int
    created_at: datetime
    updated_at: datetime


class Plan(State):
    plan_id: str
    title: str
    summary: str = ""
    approved_by: str
    document_number: str | None = None
    evaluation_interval_months: int | None = None
    evaluation_due: datetime | None = None
    """When the last evaluation that fell due did (set by ``plan.evaluation_due``)."""


class TaskStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Milestone(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    milestone_id: str
    title: str
    due: datetime
    met_at: datetime | None = None
    met_by: str | None = None
    evidence: tuple[Evidence, ...] = ()

    @property
    def met(self) -> bool:
        return self.met_at is not None


class ProgressPoint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime
    percent: int


class Task(State):
    task_id: str
    plan_id: str
    title: str
    field: CooperationField
    due: datetime
    created_by: str
    lead_department: Department | None = None
    supporting_departments: tuple[Department, ...] = ()
    status: TaskStatus = TaskStatus.OPEN
    percent: int = 0
    progress_note: str = ""
    milestones: tuple[Milestone, ...] = ()
    closed_at: datetime | None = None
    health: TaskHealth = TaskHealth.ON_TRACK
    health_reason: str = ""
    evidence: tuple[Evidence, ...] = ()
    """What its progress reports rest on."""
    recent_progress: tuple[ProgressPoint, ...] = ()
    """The last few progress reports, for the trend (docs/health.md)."""

    @property
    def is_open(self) -> bool:
        return self.status is TaskStatus.OPEN

    def responsible(self, department: Department | None) -> bool:
        """Whether ``department`` leads or supports this task."""
        return department is not None and (
            department == self.lead_department or department in self.supporting_departments
        )

    def milestone(self, milestone_id: str) -> Milestone | None:
        return next((m for m in self.milestones if m.milestone_id == milestone_id), None)

    def is_overdue(self, now: datetime) -> bool:
        if not self.is_open:
            return False
        return self.due < now or any(not m.met and m.due < now for m in self.milestones)


class IssueStatus(StrEnum):
    REPORTED = "reported"
    ESCALATED = "escalated"
    RESOLVED = "resolved"


class Issue(State):
    issue_id: str
    task_id: str
    title: str
    severity: Severity
    detail: str = ""
    reported_by: str
    reported_by_department: Department | None = None
    status: IssueStatus = IssueStatus.REPORTED
    escalated_to: Department | None = None
    escalated_by: str | None = None
    resolution: str = ""
    evidence: tuple[Evidence, ...] = ()


class ApprovalStatus(StrEnum):
    REQUESTED = "requested"
    GRANTED = "granted"
    REJECTED = "rejected"


class Approval(State):
    approval_id: str
    task_id: str
    kind: ApprovalKind
    title: str
    detail: str = ""
    requested_by: str
    status: ApprovalStatus = ApprovalStatus.REQUESTED
    decided_by: str | None = None
    reason: str = ""


class Evaluation(State):
    evaluation_id: str
    task_id: str | None = None
    plan_id: str | None = None
    rating: Rating
    findings: str = ""
    evaluated_by: str
    evidence: tuple[Evidence, ...] = ()


class AnswerState(StrEnum):
    ASKED = "asked"
    ACKNOWLEDGED = "acknowledged"
    ANSWERED = "answered"
    DECLINED = "declined"


class DepartmentAnswer(BaseModel):
    """One asked department's part of a support request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    department: Department
    state: AnswerState = AnswerState.ASKED
    acknowledged_at: datetime | None = None
    answered_at: datetime | None = None
    answer: str = ""
    reason: str = ""
    evidence: tuple[Evidence, ...] = ()

    @property
    def done(self) -> bool:
        return self.state in (AnswerState.ANSWERED, AnswerState.DECLINED)


class SupportRequest(State):
    request_id: str
    issue_id: str
    task_id: str
    need: str
    by: datetime
    requested_by: str
    requested_by_department: Department | None = None
    answers: tuple[DepartmentAnswer, ...]
    closed_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def answer_of(self, department: Department | None) -> DepartmentAnswer | None:
        return next((a for a in self.answers if a.department == department), None)


Aggregate = Plan | Task | Issue | Approval | Evaluation | SupportRequest
