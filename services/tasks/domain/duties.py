"""What a person may do on a task now, and what their department must do (待办), from the same
rules that decide commands: each candidate command is tried against ``decide`` with the state
as it is, and offered only when the rules would not refuse it as forbidden, conflicting or
unknown. Pure: the world, the actor and the moment in, plain values out."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.tasks.domain import commands as cmd
from services.tasks.domain.decide import World, decide
from shared.contract.codes import ApprovalKind, CooperationField, Department, Rating, Severity
from shared.domain.access import Actor
from shared.domain.projection import Projection
from shared.domain.refusals import Invalid, Refused
from shared.domain.state import (
    AnswerState,
    ApprovalStatus,
    Issue,
    IssueStatus,
    Plan,
    SupportRequest,
    Task,
)

PROBE_ID = "probe-of-duties"
"""The id a probed command would create: never an aggregate's (the API draws real ones)."""
MILESTONE_HORIZON = timedelta(days=30)
"""Milestones due within this are on the lead department's list."""
EVALUATION_HORIZON = timedelta(days=30)


@dataclass(frozen=True)
class Action:
    """A command the actor may issue now: its name, the aggregate it targets and that
    aggregate's version (for If-Match), and what it is about, for the form's heading."""

    command: str
    target: str
    version: int
    task_id: str | None
    about: str
    ids: tuple[tuple[str, str], ...]
    """The command's id fields and their values (the API's path parameters)."""


@dataclass(frozen=True)
class Duty:
    """Something a department must do: what, about which task, by when, and the act that does it."""

    kind: str
    task_id: str | None
    title: str
    due: datetime | None
    overdue: bool
    action: Action


ANY_MOMENT = datetime.min.replace(tzinfo=UTC)
"""Whether the values are still in time is the form's to check, like the rest of the values."""


def allowed(command: cmd.Command, actor: Actor, world: World) -> bool:
    """Whether the rules would take ``command`` from ``actor`` now. A refusal of the values alone
    (invalid) still counts as allowed: the person fills the form in, the rules check it then."""
    try:
        decide(command, actor, world, at=ANY_MOMENT)
    except Invalid:
        return True
    except Refused:
        return False
    return True


def task_actions(world: Projection, actor: Actor, task_id: str, now: datetime) -> list[Action]:
    """What ``actor`` may do on the task and on its issues, approvals and support requests."""
    task = world.task(task_id)
    if task is None:
        return []
    return [
        _action(command, version, task_id, about)
        for command, version, about in _candidates(world, task, now)
        if allowed(command, actor, world)
    ]


def plan_actions(world: Projection, actor: Actor, now: datetime) -> list[Action]:
    """What ``actor`` may do on the plans: approve one, create a task in one, evaluate one."""
    candidates: list[tuple[cmd.Command, int, str]] = [
        (cmd.ApprovePlan(plan_id=PROBE_ID, title="probe"), 0, ""),
    ]
    for plan in world.plans():
        candidates += [
            (_probe_task(plan, now), plan.version, plan.title),
            (
                cmd.RecordPlanEvaluation(plan_id=plan.plan_id, evaluation_id=PROBE_ID, rating=Rating.GOOD),
                plan.version,
                plan.title,
            ),
        ]
    return [_action(c, version, None, about) for c, version, about in candidates if allowed(c, actor, world)]


def _probe_task(plan: Plan, now: datetime) -> cmd.CreateTask:
    return cmd.CreateTask(
        task_id=PROBE_ID,
        plan_id=plan.plan_id,
        title="probe",
        field=CooperationField.TRADE,
        lead_department=Department.JILIN,
        due=now + timedelta(days=365),
    )


def _candidates(world: Projection, task: Task, now: datetime) -> Iterator[tuple[cmd.Command, int, str]]:
    t, version = task.task_id, task.version
    yield cmd.ReportProgress(task_id=t, percent=task.percent), version, task.title
    yield cmd.ScheduleMilestone(task_id=t, milestone_id=PROBE_ID, title="probe", due=task.due), version, task.title
    for milestone in task.milestones:
        if not milestone.met:
            yield cmd.MarkMilestoneMet(task_id=t, milestone_id=milestone.milestone_id), version, milestone.title
    yield cmd.CompleteTask(task_id=t), version, task.title
    yield cmd.ChangeDeadline(task_id=t, due=task.due, reason="probe"), version, task.title
    yield cmd.ReportIssue(task_id=t, issue_id=PROBE_ID, title="probe", severity=Severity.LOW), version, task.title
    yield (
        cmd.RequestApproval(task_id=t, approval_id=PROBE_ID, kind=ApprovalKind.POLICY, title="probe"),
        version,
        task.title,
    )
    yield cmd.RecordEvaluation(task_id=t, evaluation_id=PROBE_ID, rating=Rating.GOOD), version, task.title
    for issue in world.issues_of(t):
        yield from _issue_candidates(issue, task, now)
    for approval in world.approvals_of(t):
        if approval.status is ApprovalStatus.REQUESTED:
            yield cmd.DecideApproval(approval_id=approval.approval_id, granted=True), approval.version, approval.title
    for request in world.support_requests_of(t):
        yield from _support_candidates(request)


def _issue_candidates(issue: Issue, task: Task, now: datetime) -> Iterator[tuple[cmd.Command, int, str]]:
    if issue.status is IssueStatus.RESOLVED:
        return
    i, version = issue.issue_id, issue.version
    yield cmd.EscalateIssue(issue_id=i), version, issue.title
    yield cmd.ResolveIssue(issue_id=i), version, issue.title
    asked = task.supporting_departments[:1] or (Department.MOFCOM,)
    yield (
        cmd.RequestSupport(issue_id=i, request_id=PROBE_ID, departments=asked, need="probe", by=now + timedelta(7)),
        version,
        issue.title,
    )


def _support_candidates(request: SupportRequest) -> Iterator[tuple[cmd.Command, int, str]]:
    if not request.is_open:
        return
    r, version = request.request_id, request.version
    yield cmd.AcknowledgeSupport(request_id=r), version, request.need
    yield cmd.AnswerSupport(request_id=r, answer="probe"), version, request.need
    yield cmd.DeclineSupport(request_id=r, reason="probe"), version, request.need
    yield cmd.CloseSupport(request_id=r), version, request.need


def _action(command: cmd.Command, version: int, task_id: str | None, about: str) -> Action:
    ids = tuple(
        (name, str(getattr(command, name)))
        for name in ("plan_id", "task_id", "milestone_id", "issue_id", "approval_id", "request_id")
        if name in type(command).model_fields and name != command.creates
    )
    target = (command.target and str(getattr(command, command.target, ""))) or ""
    return Action(command.name, target, version, task_id, about, ids)


# --- the department's list ----------------------------------------------------------------


def duties(world: Projection, actor: Actor, now: datetime, *, report_every: timedelta) -> list[Duty]:
    """What the actor's department must do now, most urgent first: support to acknowledge and
    answer, approvals to decide, milestones due, progress reports overdue, evaluations due. Each
    only if the rules let this actor do it."""
    found = [
        *_support_duties(world, actor, now),
        *_approval_duties(world, actor, now),
        *_task_duties(world, actor, now, report_every),
        *_evaluation_duties(world, actor, now),
    ]
    far = datetime.max.replace(tzinfo=now.tzinfo)
    return sorted(found, key=lambda duty: (not duty.overdue, duty.due or far, duty.title))


def _duty(
    kind: str, command: cmd.Command, version: int, task_id: str | None, title: str, due: datetime | None, now: datetime
) -> Duty:
    action = _action(command, version, task_id, title)
    return Duty(kind, task_id, title, due, due is not None and due < now, action)


def _support_duties(world: Projection, actor: Actor, now: datetime) -> Iterator[Duty]:
    for request in world.support_requests():
        answer = request.answer_of(actor.department)
        if not request.is_open or answer is None or answer.done:
            continue
        command: cmd.Command = (
            cmd.AcknowledgeSupport(request_id=request.request_id)
            if answer.state is AnswerState.ASKED
            else cmd.AnswerSupport(request_id=request.request_id, answer="probe")
        )
        if allowed(command, actor, world):
            kind = "acknowledge_support" if answer.state is AnswerState.ASKED else "answer_support"
            yield _duty(kind, command, request.version, request.task_id, request.need, request.by, now)


def _approval_duties(world: Projection, actor: Actor, now: datetime) -> Iterator[Duty]:
    for approval in world.approvals():
        if approval.status is not ApprovalStatus.REQUESTED:
            continue
        command = cmd.DecideApproval(approval_id=approval.approval_id, granted=True)
        if allowed(command, actor, world):
            # An approval has no date of its own: the oldest request is the most urgent.
            yield _duty(
                "decide_approval", command, approval.version, approval.task_id, approval.title, approval.created_at, now
            )


def _task_duties(world: Projection, actor: Actor, now: datetime, report_every: timedelta) -> Iterator[Duty]:
    for task in world.tasks():
        if not task.is_open or task.lead_department != actor.department:
            continue
        for milestone in task.milestones:
            met = cmd.MarkMilestoneMet(task_id=task.task_id, milestone_id=milestone.milestone_id)
            if not milestone.met and milestone.due <= now + MILESTONE_HORIZON and allowed(met, actor, world):
                yield _duty("milestone_due", met, task.version, task.task_id, milestone.title, milestone.due, now)
        last_report = task.recent_progress[-1].at if task.recent_progress else task.created_at
        report = cmd.ReportProgress(task_id=task.task_id, percent=task.percent)
        if last_report + report_every <= now and allowed(report, actor, world):
            yield _duty(
                "report_progress", report, task.version, task.task_id, task.title, last_report + report_every, now
            )


def _evaluation_duties(world: Projection, actor: Actor, now: datetime) -> Iterator[Duty]:
    for plan in world.plans():
        due = plan.evaluation_due
        last = world.last_plan_evaluation(plan.plan_id)
        if due is None or due > now + EVALUATION_HORIZON or (last is not None and last >= due):
            continue
        command = cmd.RecordPlanEvaluation(plan_id=plan.plan_id, evaluation_id=PROBE_ID, rating=Rating.GOOD)
        if allowed(command, actor, world):
            yield _duty("evaluation_due", command, plan.version, None, plan.title, due, now)
