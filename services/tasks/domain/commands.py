"""Commands departmental systems send, over HTTP or on ``policy.commands``.

Each ``*Body`` is what an HTTP route accepts; its command adds the ids the route takes from
the path (and, for what it creates, a new id, which the edge draws so ``decide`` stays pure).
On the command topic the body is the command itself, ids included.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from shared.contract.catalog import EvaluationInterval, EvidenceList
from shared.contract.codes import ApprovalKind, CooperationField, Department, Rating, Severity
from shared.contract.types import AggregateId, Percent, Text, Title, UtcDatetime


class Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PlanBody(Body):
    title: Title
    summary: Text = ""
    evaluation_interval_months: EvaluationInterval | None = None
    document_number: str | None = Field(
        default=None, max_length=100, description="the number of the document approving the plan (国函〔2020〕…号)"
    )


class AmendmentBody(Body):
    title: Title | None = None
    summary: Text = Field(min_length=1)
    evaluation_interval_months: EvaluationInterval | None = None


class TaskBody(Body):
    plan_id: AggregateId
    title: Title
    field: CooperationField
    lead_department: Department
    supporting_departments: tuple[Department, ...] = Field(default=(), max_length=20)
    due: UtcDatetime


class MilestoneBody(Body):
    title: Title
    due: UtcDatetime


class EmptyBody(Body):
    pass


class EvidenceBody(Body):
    evidence: EvidenceList = ()
    """Files uploaded first (``POST /v1/evidence``), named by what that answered."""


class ProgressBody(EvidenceBody):
    percent: Percent
    note: Text = ""


class CompletionBody(Body):
    note: Text = ""


class CancellationBody(Body):
    reason: Text = Field(min_length=1)


class ReassignmentBody(Body):
    lead_department: Department
    supporting_departments: tuple[Department, ...] = Field(default=(), max_length=20)
    reason: Text = ""


class DeadlineBody(Body):
    due: UtcDatetime
    reason: Text = Field(min_length=1)


class IssueBody(EvidenceBody):
    title: Title
    severity: Severity
    detail: Text = ""


class EscalationBody(Body):
    reason: Text = ""


class ResolutionBody(Body):
    resolution: Text = ""


class ApprovalBody(Body):
    kind: ApprovalKind
    title: Title
    detail: Text = ""


class DecisionBody(Body):
    granted: bool
    reason: Text = ""


class EvaluationBody(EvidenceBody):
    rating: Rating
    findings: Text = ""


class SupportRequestBody(Body):
    departments: tuple[Department, ...] = Field(min_length=1, max_length=12)
    need: Text = Field(min_length=1)
    by: UtcDatetime


class AnswerBody(EvidenceBody):
    answer: Text = Field(min_length=1)


class DeclineBody(Body):
    reason: Text = Field(min_length=1)


class ClosingBody(Body):
    note: Text = ""


class Command(Body):
    """A body with its targets. ``target`` names the existing aggregate the command is checked
    against (its lock and its ``If-Match`` version); ``creates`` the id field it makes new."""

    name: ClassVar[str]
    target: ClassVar[str | None] = None
    creates: ClassVar[str | None] = None
    about: ClassVar[str | None] = None
    """The id field of the aggregate its events are about, when that is neither what it creates
    nor (failing that) its target."""
    still_to_come: ClassVar[tuple[str, ...]] = ()
    """Fields naming a moment that must lie after the moment the command is decided."""

    @property
    def subject_id(self) -> str:
        """The aggregate its events are about: the one whose partition's owner decides it."""
        field = self.about or self.creates or self.target
        assert field is not None, f"{self.name} names no aggregate"
        return str(getattr(self, field))


class ApprovePlan(PlanBody, Command):
    name: ClassVar[str] = "approve_plan"
    creates: ClassVar[str | None] = "plan_id"
    plan_id: AggregateId


class AmendPlan(AmendmentBody, Command):
    """The State Council amends a plan it approved."""

    name: ClassVar[str] = "amend_plan"
    target: ClassVar[str | None] = "plan_id"
    plan_id: AggregateId


class CreateTask(TaskBody, Command):
    name: ClassVar[str] = "create_task"
    creates: ClassVar[str | None] = "task_id"
    task_id: AggregateId


class TaskCommand(Command):
    target: ClassVar[str | None] = "task_id"
    task_id: AggregateId


class ScheduleMilestone(MilestoneBody, TaskCommand):
    name: ClassVar[str] = "schedule_milestone"
    creates: ClassVar[str | None] = "milestone_id"
    about: ClassVar[str | None] = "task_id"
    milestone_id: AggregateId


class MarkMilestoneMet(EvidenceBody, TaskCommand):
    name: ClassVar[str] = "mark_milestone_met"
    milestone_id: AggregateId


class ReportProgress(ProgressBody, TaskCommand):
    name: ClassVar[str] = "report_progress"


class CompleteTask(CompletionBody, TaskCommand):
    name: ClassVar[str] = "complete_task"


class CancelTask(CancellationBody, TaskCommand):
    name: ClassVar[str] = "cancel_task"


class ReassignTask(ReassignmentBody, TaskCommand):
    name: ClassVar[str] = "reassign_task"


class ChangeDeadline(DeadlineBody, TaskCommand):
    name: ClassVar[str] = "change_deadline"


class ReportIssue(IssueBody, TaskCommand):
    name: ClassVar[str] = "report_issue"
    creates: ClassVar[str | None] = "issue_id"
    issue_id: AggregateId


class RequestApproval(ApprovalBody, TaskCommand):
    name: ClassVar[str] = "request_approval"
    creates: ClassVar[str | None] = "approval_id"
    approval_id: AggregateId


class RecordEvaluation(EvaluationBody, TaskCommand):
    name: ClassVar[str] = "record_evaluation"
    creates: ClassVar[str | None] = "evaluation_id"
    evaluation_id: AggregateId


class EscalateIssue(EscalationBody, Command):
    name: ClassVar[str] = "escalate_issue"
    target: ClassVar[str | None] = "issue_id"
    issue_id: AggregateId


class ResolveIssue(ResolutionBody, Command):
    name: ClassVar[str] = "resolve_issue"
    target: ClassVar[str | None] = "issue_id"
    issue_id: AggregateId


class DecideApproval(DecisionBody, Command):
    name: ClassVar[str] = "decide_approval"
    target: ClassVar[str | None] = "approval_id"
    approval_id: AggregateId


class RecordPlanEvaluation(EvaluationBody, Command):
    """The supervisor (NDRC) evaluates the implementation of a plan as a whole."""

    name: ClassVar[str] = "record_plan_evaluation"
    target: ClassVar[str | None] = "plan_id"
    creates: ClassVar[str | None] = "evaluation_id"
    plan_id: AggregateId
    evaluation_id: AggregateId


class RequestSupport(SupportRequestBody, Command):
    """The lead department (or the NDRC) asks State Council departments for help on an issue."""

    name: ClassVar[str] = "request_support"
    target: ClassVar[str | None] = "issue_id"
    creates: ClassVar[str | None] = "request_id"
    still_to_come: ClassVar[tuple[str, ...]] = ("by",)
    issue_id: AggregateId
    request_id: AggregateId


class SupportCommand(Command):
    target: ClassVar[str | None] = "request_id"
    request_id: AggregateId


class AcknowledgeSupport(EmptyBody, SupportCommand):
    """An asked department acknowledges a support request."""

    name: ClassVar[str] = "acknowledge_support"


class AnswerSupport(AnswerBody, SupportCommand):
    """An asked department answers with what it did."""

    name: ClassVar[str] = "answer_support"


class DeclineSupport(DeclineBody, SupportCommand):
    """An asked department declines, saying why."""

    name: ClassVar[str] = "decline_support"


class CloseSupport(ClosingBody, SupportCommand):
    """The requester closes a support request."""

    name: ClassVar[str] = "close_support"


COMMANDS: dict[str, type[Command]] = {
    cls.name: cls
    for cls in (
        ApprovePlan,
        AmendPlan,
        CreateTask,
        ScheduleMilestone,
        MarkMilestoneMet,
        ReportProgress,
        CompleteTask,
        CancelTask,
        ReassignTask,
        ChangeDeadline,
        ReportIssue,
        RequestApproval,
        RecordEvaluation,
        EscalateIssue,
        ResolveIssue,
        DecideApproval,
        RecordPlanEvaluation,
        RequestSupport,
        AcknowledgeSupport,
        AnswerSupport,
        DeclineSupport,
        CloseSupport,
    )
}
