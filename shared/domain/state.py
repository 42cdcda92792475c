"""State of the aggregates: Plan, Task (with its milestones), Issue, Approval, Evaluation."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from shared.contract.codes import ApprovalKind, CooperationField, Department, Rating, Severity


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

    @property
    def met(self) -> bool:
        return self.met_at is not None


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
    task_id: str
    rating: Rating
    findings: str = ""
    evaluated_by: str


Aggregate = Plan | Task | Issue | Approval | Evaluation
