"""Payloads of every event type (DESIGN.md section 4), registered by their CloudEvents ``type``.

Each payload class knows its type name, the topic it travels on and which field names its
aggregate (the record key and the CloudEvents ``subject``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from shared.contract.codes import ApprovalKind, CooperationField, Department, Rating, Role, Severity, TaskHealth
from shared.contract.topics import ALERTS, AUDIT, EVENTS
from shared.contract.types import AggregateId, EvidenceType, FileName, Percent, Sha256, Text, Title, UtcDatetime

TYPE_PREFIX = "org.policytrack."

CATALOG: dict[str, type[EventData]] = {}
"""Every event type written today, by its full name (with its version)."""
SUPERSEDED: dict[str, Superseded] = {}
"""Earlier versions of event types, still on the log: each read through its upcaster."""


class EventData(BaseModel):
    """The ``data`` of a CloudEvent. Subclasses set ``event_type`` and register themselves."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    source: ClassVar[str] = "/policytrack/tasks"
    topic: ClassVar[str] = EVENTS
    subject_field: ClassVar[str]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "event_type" in cls.__dict__:
            if cls.event_type in CATALOG:
                raise TypeError(f"event type {cls.event_type} is defined twice")
            CATALOG[cls.event_type] = cls

    @property
    def subject(self) -> str:
        return str(getattr(self, self.subject_field))


class Evidence(BaseModel):
    """A file an act rests on, as the trail holds it: the file itself is kept by the tasks
    service under its SHA-256, and served only while it still has that hash."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: FileName
    media_type: EvidenceType
    size: Annotated[int, Field(ge=1)]
    sha256: Sha256


EvidenceList = Annotated[tuple[Evidence, ...], Field(max_length=10)]
"""What one act may carry."""


def event_type(name: str, version: int = 1) -> str:
    return f"{TYPE_PREFIX}{name}.v{version}"


def full_type(name: str) -> str:
    """A type as people write it (``task.assigned``: its current version) or in full
    (``org.policytrack.task.assigned.v1``), in full."""
    if name.startswith(TYPE_PREFIX):
        return name
    current = [full for full in CATALOG if short_type(full) == name]
    return current[0] if current else event_type(name)


def versions_of(full: str) -> tuple[str, ...]:
    """Every version of an event type that the log may hold, the current one first."""
    name = short_type(full)
    return (full, *sorted(old for old in SUPERSEDED if short_type(old) == name))


B = TypeVar("B", bound=BaseModel)


@dataclass(frozen=True)
class Superseded:
    """An earlier version of an event type: its own model, which checks its records as strictly
    as it always did, and the function that makes the current version of one."""

    model: type[BaseModel]
    upcast: Callable[[Any], EventData]


def superseded(old_type: str, model: type[B], upcast: Callable[[B], EventData]) -> None:
    if old_type in CATALOG or old_type in SUPERSEDED:
        raise TypeError(f"event type {old_type} is defined twice")
    SUPERSEDED[old_type] = Superseded(model, upcast)


def short_type(full: str) -> str:
    """``org.policytrack.task.assigned.v1`` as people say it: ``task.assigned``."""
    return full.removeprefix(TYPE_PREFIX).rsplit(".v", 1)[0]


# --- plan --------------------------------------------------------------------------------


class PlanEvent(EventData):
    subject_field: ClassVar[str] = "plan_id"
    plan_id: AggregateId


EvaluationInterval = Annotated[int, Field(ge=1, le=60, description="months between evaluations of the plan")]


class PlanApprovedV1(BaseModel):
    """``plan.approved`` as version 1 wrote it, before the approving document's number."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    plan_id: AggregateId
    title: Title
    summary: Text = ""
    evaluation_interval_months: EvaluationInterval | None = None


class PlanApproved(PlanEvent):
    event_type: ClassVar[str] = event_type("plan.approved", 2)
    title: Title
    summary: Text = ""
    evaluation_interval_months: EvaluationInterval | None = None
    document_number: str | None = Field(
        default=None,
        max_length=100,
        description="the number of the document approving the plan (国函〔2020〕…号); version 1 has none",
    )


superseded(
    event_type("plan.approved", 1), PlanApprovedV1, lambda old: PlanApproved(**old.model_dump(), document_number=None)
)


class PlanAmended(PlanEvent):
    event_type: ClassVar[str] = event_type("plan.amended")
    title: Title | None = None
    summary: Text
    evaluation_interval_months: EvaluationInterval | None = None


class PlanEvaluationDue(PlanEvent):
    """An evaluation of the plan's implementation fell due (its interval has passed since the
    plan was approved or last evaluated as a whole)."""

    event_type: ClassVar[str] = event_type("plan.evaluation_due")
    due: UtcDatetime
    last_evaluated_at: UtcDatetime | None = None


# --- task and its milestones ----------------------------------------------------------------


class TaskEvent(EventData):
    subject_field: ClassVar[str] = "task_id"
    task_id: AggregateId


class TaskCreated(TaskEvent):
    event_type: ClassVar[str] = event_type("task.created")
    plan_id: AggregateId
    title: Title
    field: CooperationField
    due: UtcDatetime


class TaskAssigned(TaskEvent):
    event_type: ClassVar[str] = event_type("task.assigned")
    lead_department: Department
    supporting_departments: tuple[Department, ...] = ()


class TaskReassigned(TaskEvent):
    event_type: ClassVar[str] = event_type("task.reassigned")
    lead_department: Department
    supporting_departments: tuple[Department, ...] = ()
    reason: Text = ""


class TaskDeadlineChanged(TaskEvent):
    event_type: ClassVar[str] = event_type("task.deadline_changed")
    due: UtcDatetime
    reason: Text = ""


class TaskProgressReported(TaskEvent):
    event_type: ClassVar[str] = event_type("task.progress_reported")
    percent: Percent
    note: Text = ""
    evidence: EvidenceList = ()


class TaskHealthChanged(TaskEvent):
    """The task's health as its milestones and progress say (docs/health.md), when it changes."""

    event_type: ClassVar[str] = event_type("task.health_changed")
    health: TaskHealth
    previous: TaskHealth
    reason: Text = ""


class TaskCompleted(TaskEvent):
    event_type: ClassVar[str] = event_type("task.completed")
    note: Text = ""


class TaskCancelled(TaskEvent):
    event_type: ClassVar[str] = event_type("task.cancelled")
    reason: Text = ""


class MilestoneScheduled(TaskEvent):
    event_type: ClassVar[str] = event_type("milestone.scheduled")
    milestone_id: AggregateId
    title: Title
    due: UtcDatetime


class MilestoneMet(TaskEvent):
    event_type: ClassVar[str] = event_type("milestone.met")
    milestone_id: AggregateId
    evidence: EvidenceList = ()


# --- issue ----------------------------------------------------------------------------------


class IssueEvent(EventData):
    subject_field: ClassVar[str] = "issue_id"
    issue_id: AggregateId
    task_id: AggregateId


class IssueReported(IssueEvent):
    event_type: ClassVar[str] = event_type("issue.reported")
    title: Title
    severity: Severity
    detail: Text = ""
    evidence: EvidenceList = ()


class IssueEscalated(IssueEvent):
    """A major issue reported on to the State Council by the supervisor."""

    event_type: ClassVar[str] = event_type("issue.escalated")
    escalated_to: Department = Department.SC
    reason: Text = ""


class IssueResolved(IssueEvent):
    event_type: ClassVar[str] = event_type("issue.resolved")
    resolution: Text = ""


# --- approval -------------------------------------------------------------------------------


class ApprovalEvent(EventData):
    subject_field: ClassVar[str] = "approval_id"
    approval_id: AggregateId
    task_id: AggregateId


class ApprovalRequested(ApprovalEvent):
    """An important policy or major construction project submitted for approval."""

    event_type: ClassVar[str] = event_type("approval.requested")
    kind: ApprovalKind
    title: Title
    detail: Text = ""


class ApprovalGranted(ApprovalEvent):
    event_type: ClassVar[str] = event_type("approval.granted")
    reason: Text = ""


class ApprovalRejected(ApprovalEvent):
    event_type: ClassVar[str] = event_type("approval.rejected")
    reason: Text = ""


# --- evaluation -----------------------------------------------------------------------------


class EvaluationRecorded(EventData):
    """The NDRC's evaluation of the implementation: of a task, or of a plan as a whole."""

    event_type: ClassVar[str] = event_type("evaluation.recorded")
    subject_field: ClassVar[str] = "evaluation_id"
    evaluation_id: AggregateId
    task_id: AggregateId | None = None
    plan_id: AggregateId | None = None
    rating: Rating
    findings: Text = ""
    evidence: EvidenceList = ()

    @model_validator(mode="after")
    def _of_a_task_or_a_plan(self) -> Self:
        if (self.task_id is None) == (self.plan_id is None):
            raise ValueError("an evaluation is of a task or of a plan: give exactly one of task_id and plan_id")
        return self


# --- support requests (item 4 of the reply: State Council departments help solve difficulties) --


class SupportRequestEvent(EventData):
    subject_field: ClassVar[str] = "request_id"
    request_id: AggregateId
    issue_id: AggregateId
    task_id: AggregateId


class SupportRequested(SupportRequestEvent):
    """The lead department (or the NDRC) asks State Council departments for help on an issue."""

    event_type: ClassVar[str] = event_type("support_request.requested")
    departments: tuple[Department, ...] = Field(min_length=1, max_length=12)
    need: Text = Field(min_length=1)
    by: UtcDatetime


class SupportAcknowledged(SupportRequestEvent):
    """An asked department acknowledges the request (for itself only)."""

    event_type: ClassVar[str] = event_type("support_request.acknowledged")
    department: Department


class SupportAnswered(SupportRequestEvent):
    """An asked department answers with what it did."""

    event_type: ClassVar[str] = event_type("support_request.answered")
    department: Department
    answer: Text = Field(min_length=1)
    evidence: EvidenceList = ()


class SupportDeclined(SupportRequestEvent):
    """An asked department declines, saying why."""

    event_type: ClassVar[str] = event_type("support_request.declined")
    department: Department
    reason: Text = Field(min_length=1)


class SupportRequestClosed(SupportRequestEvent):
    """The requester closes the request."""

    event_type: ClassVar[str] = event_type("support_request.closed")
    note: Text = ""


# --- the NDRC's report to the State Council --------------------------------------------------


class ReportSubmitted(EventData):
    """The NDRC reports on a period to the State Council: who sent which report, and its SHA-256,
    so that the trail proves what the State Council was told."""

    event_type: ClassVar[str] = event_type("report.submitted")
    source: ClassVar[str] = "/policytrack/audit"
    topic: ClassVar[str] = AUDIT
    subject_field: ClassVar[str] = "report_id"
    report_id: AggregateId
    period_from: UtcDatetime
    period_to: UtcDatetime
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    media_type: str = "application/json"


# --- alerts (emitted by the notifications service) -----------------------------------------


class AlertEvent(EventData):
    """Alerts are keyed by task so that every alert about one task stays in order (receipts of
    a plan's alert carry the plan's id in ``task_id``)."""

    source: ClassVar[str] = "/policytrack/notifications"
    topic: ClassVar[str] = ALERTS
    subject_field: ClassVar[str] = "task_id"
    alert_id: AggregateId
    task_id: AggregateId


class DeadlineAlert(AlertEvent):
    milestone_id: AggregateId | None = None
    title: Title
    due: UtcDatetime
    departments: tuple[Department, ...] = ()


class DeadlineApproaching(DeadlineAlert):
    event_type: ClassVar[str] = event_type("alert.deadline_approaching")
    lead_seconds: int = Field(ge=0)


class DeadlineDue(DeadlineAlert):
    event_type: ClassVar[str] = event_type("alert.deadline_due")


class DeadlineOverdue(DeadlineAlert):
    event_type: ClassVar[str] = event_type("alert.overdue")


class AlertEscalated(DeadlineAlert):
    event_type: ClassVar[str] = event_type("alert.escalated")
    escalated_to: Department
    reason: Text = ""


class TaskAtRisk(DeadlineAlert):
    """The task's health changed to at risk: to its lead department and the NDRC."""

    event_type: ClassVar[str] = event_type("alert.at_risk")
    reason: Text = ""


class SupportUnacknowledged(DeadlineAlert):
    """A support request not acknowledged within 5 working days: to the asked department and the NDRC."""

    event_type: ClassVar[str] = event_type("alert.support_unacknowledged")
    request_id: AggregateId
    department: Department


class SupportOverdue(DeadlineAlert):
    """A support request past its "by when" without an answer: to the asked department and the NDRC."""

    event_type: ClassVar[str] = event_type("alert.support_overdue")
    request_id: AggregateId
    department: Department


class EvaluationFallingDue(EventData):
    """An evaluation of the plan fell due: to the NDRC. Keyed by the plan."""

    event_type: ClassVar[str] = event_type("alert.evaluation_due")
    source: ClassVar[str] = "/policytrack/notifications"
    topic: ClassVar[str] = ALERTS
    subject_field: ClassVar[str] = "plan_id"
    alert_id: AggregateId
    plan_id: AggregateId
    title: Title
    due: UtcDatetime
    departments: tuple[Department, ...] = ()


class DigestItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["due_soon", "late", "awaiting_answer"]
    task_id: AggregateId
    milestone_id: AggregateId | None = None
    request_id: AggregateId | None = None
    title: Title
    due: UtcDatetime


class DailyDigest(EventData):
    """A department's morning digest (Beijing time) of what falls due within a week, what is
    late and what awaits its answer; made only for departments with mail readers of it.
    Keyed by the department."""

    event_type: ClassVar[str] = event_type("alert.daily_digest")
    source: ClassVar[str] = "/policytrack/notifications"
    topic: ClassVar[str] = ALERTS
    subject_field: ClassVar[str] = "department"
    alert_id: AggregateId
    department: Department
    day: date
    items: tuple[DigestItem, ...] = Field(max_length=1000)
    departments: tuple[Department, ...] = ()


Notice = DeadlineAlert | EvaluationFallingDue | DailyDigest
"""What subscribers are told: an alert with its recipients (``departments``)."""
NOTICES = (DeadlineAlert, EvaluationFallingDue, DailyDigest)


class AlertDelivered(AlertEvent):
    event_type: ClassVar[str] = event_type("alert.delivered")
    subscription_id: AggregateId
    attempts: int = Field(ge=1)
    status_code: int


class AlertDeliveryFailed(AlertEvent):
    event_type: ClassVar[str] = event_type("alert.delivery_failed")
    subscription_id: AggregateId
    attempts: int = Field(ge=1)
    reason: Text


# --- subscriptions (notifications service) ---------------------------------------------------


class SubscriptionEvent(EventData):
    source: ClassVar[str] = "/policytrack/notifications"
    topic: ClassVar[str] = ALERTS
    subject_field: ClassVar[str] = "subscription_id"
    subscription_id: AggregateId


class SubscriptionCreated(SubscriptionEvent):
    event_type: ClassVar[str] = event_type("subscription.created")
    department: Department | None = None
    task_id: AggregateId | None = None
    event_types: tuple[str, ...] = ()
    webhook_url: HttpUrl = Field(description="where alerts go, with any userinfo and query string redacted")
    sealed_webhook_url: str | None = Field(
        default=None, description="the whole webhook URL, encrypted with the service's sealing key"
    )
    sealed_secret: str = Field(description="the signing secret, encrypted with the service's sealing key")


class MailSubscriptionCreated(SubscriptionEvent):
    """Alerts by e-mail, to a department's mailbox or one person's, in the reader's language."""

    event_type: ClassVar[str] = event_type("subscription.mail_created")
    department: Department | None = None
    task_id: AggregateId | None = None
    event_types: tuple[str, ...] = ()
    person: str | None = Field(
        default=None, max_length=200, description="whose own mailbox it is; None: the department's"
    )
    address: str = Field(max_length=320, description="the address with its local part masked")
    sealed_address: str = Field(description="the whole address, encrypted with the service's sealing key")
    language: Literal["zh-CN", "en", "ko"] = "zh-CN"
    digest: bool = Field(default=True, description="also a daily digest of what is due, late or awaiting an answer")


class SubscriptionRemoved(SubscriptionEvent):
    event_type: ClassVar[str] = event_type("subscription.removed")
    reason: Text = ""


# --- calendar feeds (notifications service) -------------------------------------------------


class CalendarFeedEvent(EventData):
    source: ClassVar[str] = "/policytrack/notifications"
    topic: ClassVar[str] = ALERTS
    subject_field: ClassVar[str] = "feed_id"
    feed_id: AggregateId


class CalendarFeedIssued(CalendarFeedEvent):
    """A secret address of an iCalendar feed of the deadlines its owner may see. Only the
    secret's SHA-256 is kept: whoever reads the log cannot open the feed."""

    event_type: ClassVar[str] = event_type("calendar_feed.issued")
    owner: Literal["department", "person"]
    department: Department
    roles: tuple[Role, ...] = Field(max_length=10, description="the roles whose view the feed shows")
    scope: Literal["own", "all"] = Field(
        default="own", description="the department's own deadlines, or all its maker may see"
    )
    language: Literal["zh-CN", "en", "ko"] = "zh-CN"
    secret_sha256: Sha256


class CalendarFeedRotated(CalendarFeedEvent):
    """The feed's address changed: the old one answers 404 from now on."""

    event_type: ClassVar[str] = event_type("calendar_feed.rotated")
    secret_sha256: Sha256


class CalendarFeedRevoked(CalendarFeedEvent):
    event_type: ClassVar[str] = event_type("calendar_feed.revoked")


# --- commands and audit --------------------------------------------------------------------


class FieldError(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    field: str
    message: str


class CommandRejected(EventData):
    """A command from the command topic that failed; correlated by the command's correlation id."""

    event_type: ClassVar[str] = event_type("command.rejected")
    subject_field: ClassVar[str] = "command_id"
    command_id: AggregateId
    command: str
    status: int = Field(ge=400, le=599)
    reason: Text
    errors: tuple[FieldError, ...] = ()


class CheckpointSigned(EventData):
    """The signed head of the audit hash chain, as versions before the Merkle tree published it
    (kept so that their records still decode; nothing writes it now)."""

    event_type: ClassVar[str] = event_type("audit.checkpoint")
    source: ClassVar[str] = "/policytrack/audit"
    topic: ClassVar[str] = AUDIT
    subject_field: ClassVar[str] = "chain"
    chain: AggregateId = "audit-chain"
    sequence: int = Field(ge=0)
    head_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    signed_at: UtcDatetime
    key_id: str
    signature: str = Field(description="Ed25519 signature, base64")


class TreeCheckpoint(EventData):
    """A signed checkpoint of the trail's Merkle tree: a C2SP tlog-checkpoint in a C2SP signed
    note (Ed25519), which anyone checks with the verifier key alone; with the hash chain's head
    at the same size, and the key that signed."""

    event_type: ClassVar[str] = event_type("audit.checkpoint", 2)
    source: ClassVar[str] = "/policytrack/audit"
    topic: ClassVar[str] = AUDIT
    subject_field: ClassVar[str] = "chain"
    chain: AggregateId
    size: int = Field(ge=0, description="the tree's size: how many entries it covers")
    root_hash: str = Field(pattern=r"^[A-Za-z0-9+/]{43}=$", description="the tree's root, base64")
    head_hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="the hash chain's head at the same size")
    note: str = Field(max_length=4000, description="the C2SP signed note of the checkpoint")
    key_id: str
    signed_at: UtcDatetime


class ForgeryDetected(EventData):
    """A record on an audited topic whose writer's proof failed: kept apart from the trail, never
    an act. Reported once per record, by the audit service that found it."""

    event_type: ClassVar[str] = event_type("trail.forgery_detected")
    source: ClassVar[str] = "/policytrack/audit"
    topic: ClassVar[str] = AUDIT
    subject_field: ClassVar[str] = "chain"
    chain: AggregateId
    record_topic: str = Field(max_length=200)
    record_partition: int = Field(ge=0)
    record_offset: int = Field(ge=0)
    record_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the record's value")
    reason: Text
    claimed_type: str | None = Field(default=None, max_length=200, description="the event type it claimed, if any")
    claimed_id: str | None = Field(default=None, max_length=200, description="the event id it claimed, if any")
