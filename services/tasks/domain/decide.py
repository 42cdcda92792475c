"""``decide(command, actor, world) -> events``: the division of responsibilities as rules.

Pure: no I/O, no clock (the moment of deciding is given), no random ids (the command carries
the ids it creates). A rule
that refuses raises a ``Refused`` of a kind (forbidden, not found, conflict, invalid); the
edges map kinds to what they answer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from services.tasks.domain import commands as cmd
from services.tasks.domain import support
from services.tasks.domain.support import SupportWorld
from shared.contract import catalog as c
from shared.contract.codes import Department, Role
from shared.domain.access import Actor
from shared.domain.refusals import Conflict, Forbidden, Invalid, NotFound, RefusalKind, Refused
from shared.domain.state import Approval, ApprovalStatus, Issue, IssueStatus, Plan, Task

__all__ = ["Conflict", "Forbidden", "Invalid", "NotFound", "RefusalKind", "Refused", "decide"]


class World(SupportWorld, Protocol):
    """Read access to the current state of aggregates, as rebuilt from the log."""

    def kind_of(self, aggregate_id: str) -> str | None: ...
    def last_plan_evaluation(self, plan_id: str) -> datetime | None: ...

    def plan(self, plan_id: str) -> Plan | None: ...
    def task(self, task_id: str) -> Task | None: ...
    def issue(self, issue_id: str) -> Issue | None: ...
    def approval(self, approval_id: str) -> Approval | None: ...


TASK_CREATORS = frozenset({Department.SC, Department.JILIN})
WORKING_ROLES = (Role.IMPLEMENTER, Role.SUPPORTER)


def decide(command: cmd.Command, actor: Actor, world: World, *, at: datetime) -> list[c.EventData]:
    """The events of ``command`` from ``actor``, decided at the moment ``at``."""
    if command.creates in AGGREGATE_IDS:
        new_id = str(getattr(command, command.creates))
        if (kind := world.kind_of(new_id)) is not None:
            raise Conflict(f"{new_id} is already the id of a {kind}", command.creates)
    events = _DECIDERS[type(command)](command, actor, world)
    for name in command.still_to_come:
        if getattr(command, name) <= at:
            raise Invalid(f"{name} is a moment still to come: after {at.isoformat()}", name)
    return events


AGGREGATE_IDS = frozenset({"plan_id", "task_id", "issue_id", "approval_id", "evaluation_id", "request_id"})
"""Ids of aggregates: unique across types, since each is a record key and a stream of its own."""


# --- plan and task creation ------------------------------------------------------------------


def _approve_plan(command: cmd.ApprovePlan, actor: Actor, world: World) -> list[c.EventData]:
    if actor.department != Department.SC or not actor.has(Role.APPROVER):
        raise Forbidden("only the State Council (role approver) approves a plan")
    if world.plan(command.plan_id) is not None:
        raise Conflict(f"plan {command.plan_id} already exists", "plan_id")
    return [
        c.PlanApproved(
            plan_id=command.plan_id,
            title=command.title,
            summary=command.summary,
            evaluation_interval_months=command.evaluation_interval_months,
            document_number=command.document_number,
        )
    ]


def _amend_plan(command: cmd.AmendPlan, actor: Actor, world: World) -> list[c.EventData]:
    if actor.department != Department.SC or not actor.has(Role.APPROVER):
        raise Forbidden("only the State Council (role approver) amends a plan")
    if world.plan(command.plan_id) is None:
        raise NotFound(f"no plan {command.plan_id}", "plan_id")
    return [
        c.PlanAmended(
            plan_id=command.plan_id,
            title=command.title,
            summary=command.summary,
            evaluation_interval_months=command.evaluation_interval_months,
        )
    ]


def _create_task(command: cmd.CreateTask, actor: Actor, world: World) -> list[c.EventData]:
    if actor.department not in TASK_CREATORS or not actor.has(Role.IMPLEMENTER, Role.APPROVER):
        raise Forbidden("tasks are created by the State Council or the implementing government (JILIN)")
    if world.plan(command.plan_id) is None:
        raise NotFound(f"no approved plan {command.plan_id}", "plan_id")
    if world.task(command.task_id) is not None:
        raise Conflict(f"task {command.task_id} already exists", "task_id")
    _check_assignment(command.lead_department, command.supporting_departments)
    return [
        c.TaskCreated(
            task_id=command.task_id, plan_id=command.plan_id, title=command.title, field=command.field, due=command.due
        ),
        c.TaskAssigned(
            task_id=command.task_id,
            lead_department=command.lead_department,
            supporting_departments=command.supporting_departments,
        ),
    ]


def _check_assignment(lead: Department, supporting: tuple[Department, ...]) -> None:
    if lead in supporting:
        raise Invalid("the lead department cannot also be a supporting department", "supporting_departments")
    if len(set(supporting)) != len(supporting):
        raise Invalid("a supporting department is listed twice", "supporting_departments")


# --- work on a task: only its lead or supporting departments ----------------------------------


def _open_task_of(command: cmd.TaskCommand, actor: Actor, world: World) -> Task:
    task = _existing_task(command.task_id, world)
    if not task.responsible(actor.department) or not actor.has(*WORKING_ROLES):
        raise Forbidden(f"{actor.department} is neither the lead nor a supporting department of task {task.task_id}")
    return _still_open(task)


def _existing_task(task_id: str, world: World) -> Task:
    task = world.task(task_id)
    if task is None:
        raise NotFound(f"no task {task_id}", "task_id")
    return task


def _still_open(task: Task) -> Task:
    if not task.is_open:
        raise Conflict(f"task {task.task_id} is {task.status} and accepts no more writes")
    return task


def _schedule_milestone(command: cmd.ScheduleMilestone, actor: Actor, world: World) -> list[c.EventData]:
    task = _open_task_of(command, actor, world)
    if task.milestone(command.milestone_id) is not None:
        raise Conflict(f"milestone {command.milestone_id} already exists", "milestone_id")
    return [
        c.MilestoneScheduled(
            task_id=task.task_id, milestone_id=command.milestone_id, title=command.title, due=command.due
        )
    ]


def _mark_milestone_met(command: cmd.MarkMilestoneMet, actor: Actor, world: World) -> list[c.EventData]:
    task = _open_task_of(command, actor, world)
    milestone = task.milestone(command.milestone_id)
    if milestone is None:
        raise NotFound(f"task {task.task_id} has no milestone {command.milestone_id}", "milestone_id")
    if milestone.met:
        raise Conflict(f"milestone {milestone.milestone_id} was already met", "milestone_id")
    return [c.MilestoneMet(task_id=task.task_id, milestone_id=milestone.milestone_id, evidence=command.evidence)]


def _report_progress(command: cmd.ReportProgress, actor: Actor, world: World) -> list[c.EventData]:
    task = _open_task_of(command, actor, world)
    if command.percent < task.percent and not command.note.strip():
        raise Invalid(f"progress goes back from {task.percent}% to {command.percent}%: say why in a note", "note")
    return [
        c.TaskProgressReported(
            task_id=task.task_id, percent=command.percent, note=command.note, evidence=command.evidence
        )
    ]


def _report_issue(command: cmd.ReportIssue, actor: Actor, world: World) -> list[c.EventData]:
    task = _open_task_of(command, actor, world)
    if world.issue(command.issue_id) is not None:
        raise Conflict(f"issue {command.issue_id} already exists", "issue_id")
    return [
        c.IssueReported(
            issue_id=command.issue_id,
            task_id=task.task_id,
            title=command.title,
            severity=command.severity,
            detail=command.detail,
            evidence=command.evidence,
        )
    ]


def _request_approval(command: cmd.RequestApproval, actor: Actor, world: World) -> list[c.EventData]:
    task = _open_task_of(command, actor, world)
    if world.approval(command.approval_id) is not None:
        raise Conflict(f"approval {command.approval_id} already exists", "approval_id")
    return [
        c.ApprovalRequested(
            approval_id=command.approval_id,
            task_id=task.task_id,
            kind=command.kind,
            title=command.title,
            detail=command.detail,
        )
    ]


def _complete_task(command: cmd.CompleteTask, actor: Actor, world: World) -> list[c.EventData]:
    task = _existing_task(command.task_id, world)
    if actor.department != task.lead_department or not actor.has(*WORKING_ROLES):
        raise Forbidden(f"only the lead department ({task.lead_department}) completes task {task.task_id}")
    _still_open(task)
    unmet = [m.milestone_id for m in task.milestones if not m.met]
    if unmet:
        raise Conflict(f"task {task.task_id} has milestones not yet met: {', '.join(unmet)}")
    return [c.TaskCompleted(task_id=task.task_id, note=command.note)]


def _task_for_creator(task_id: str, actor: Actor, world: World, what: str) -> Task:
    task = _existing_task(task_id, world)
    if actor.department not in TASK_CREATORS or not actor.has(Role.IMPLEMENTER, Role.APPROVER):
        raise Forbidden(f"only the State Council or the implementing government (JILIN) {what}")
    return _still_open(task)


def _cancel_task(command: cmd.CancelTask, actor: Actor, world: World) -> list[c.EventData]:
    task = _task_for_creator(command.task_id, actor, world, "cancels a task")
    return [c.TaskCancelled(task_id=task.task_id, reason=command.reason)]


def _reassign_task(command: cmd.ReassignTask, actor: Actor, world: World) -> list[c.EventData]:
    task = _task_for_creator(command.task_id, actor, world, "reassigns a task")
    _check_assignment(command.lead_department, command.supporting_departments)
    return [
        c.TaskReassigned(
            task_id=task.task_id,
            lead_department=command.lead_department,
            supporting_departments=command.supporting_departments,
            reason=command.reason,
        )
    ]


def _change_deadline(command: cmd.ChangeDeadline, actor: Actor, world: World) -> list[c.EventData]:
    task = _task_for_creator(command.task_id, actor, world, "changes a task's deadline")
    return [c.TaskDeadlineChanged(task_id=task.task_id, due=command.due, reason=command.reason)]


# --- supervision and approval ----------------------------------------------------------------


def _as_supervisor(actor: Actor, what: str) -> None:
    if actor.department != Department.NDRC or not actor.has(Role.SUPERVISOR):
        raise Forbidden(f"only the supervisor (NDRC) {what}")


def _record_evaluation(command: cmd.RecordEvaluation, actor: Actor, world: World) -> list[c.EventData]:
    _as_supervisor(actor, "records evaluations")
    task = _existing_task(command.task_id, world)
    return [
        c.EvaluationRecorded(
            evaluation_id=command.evaluation_id,
            task_id=task.task_id,
            rating=command.rating,
            findings=command.findings,
            evidence=command.evidence,
        )
    ]


def _record_plan_evaluation(command: cmd.RecordPlanEvaluation, actor: Actor, world: World) -> list[c.EventData]:
    _as_supervisor(actor, "records evaluations")
    if world.plan(command.plan_id) is None:
        raise NotFound(f"no plan {command.plan_id}", "plan_id")
    return [
        c.EvaluationRecorded(
            evaluation_id=command.evaluation_id,
            plan_id=command.plan_id,
            rating=command.rating,
            findings=command.findings,
            evidence=command.evidence,
        )
    ]


def _existing_issue(issue_id: str, world: World) -> Issue:
    issue = world.issue(issue_id)
    if issue is None:
        raise NotFound(f"no issue {issue_id}", "issue_id")
    return issue


def _escalate_issue(command: cmd.EscalateIssue, actor: Actor, world: World) -> list[c.EventData]:
    _as_supervisor(actor, "escalates issues to the State Council")
    issue = _existing_issue(command.issue_id, world)
    if issue.status is not IssueStatus.REPORTED:
        raise Conflict(f"issue {issue.issue_id} is already {issue.status}")
    return [
        c.IssueEscalated(
            issue_id=issue.issue_id, task_id=issue.task_id, escalated_to=Department.SC, reason=command.reason
        )
    ]


def _resolve_issue(command: cmd.ResolveIssue, actor: Actor, world: World) -> list[c.EventData]:
    issue = _existing_issue(command.issue_id, world)
    task = _existing_task(issue.task_id, world)
    supervisor = actor.department == Department.NDRC and actor.has(Role.SUPERVISOR)
    if not supervisor and not (task.responsible(actor.department) and actor.has(*WORKING_ROLES)):
        raise Forbidden(f"only the departments of task {task.task_id} or the supervisor resolve its issues")
    if issue.status is IssueStatus.RESOLVED:
        raise Conflict(f"issue {issue.issue_id} is already resolved")
    return [c.IssueResolved(issue_id=issue.issue_id, task_id=issue.task_id, resolution=command.resolution)]


def _decide_approval(command: cmd.DecideApproval, actor: Actor, world: World) -> list[c.EventData]:
    if actor.department != Department.SC or not actor.has(Role.APPROVER):
        raise Forbidden("only the State Council (role approver) decides an approval")
    approval = world.approval(command.approval_id)
    if approval is None:
        raise NotFound(f"no approval {command.approval_id}", "approval_id")
    if approval.status is not ApprovalStatus.REQUESTED:
        raise Conflict(f"approval {approval.approval_id} was already decided: {approval.status}")
    decided = c.ApprovalGranted if command.granted else c.ApprovalRejected
    return [decided(approval_id=approval.approval_id, task_id=approval.task_id, reason=command.reason)]


_DECIDERS: dict[type[cmd.Command], Callable[..., list[c.EventData]]] = {
    cmd.ApprovePlan: _approve_plan,
    cmd.AmendPlan: _amend_plan,
    cmd.CreateTask: _create_task,
    cmd.ScheduleMilestone: _schedule_milestone,
    cmd.MarkMilestoneMet: _mark_milestone_met,
    cmd.ReportProgress: _report_progress,
    cmd.ReportIssue: _report_issue,
    cmd.RequestApproval: _request_approval,
    cmd.CompleteTask: _complete_task,
    cmd.CancelTask: _cancel_task,
    cmd.ReassignTask: _reassign_task,
    cmd.ChangeDeadline: _change_deadline,
    cmd.RecordEvaluation: _record_evaluation,
    cmd.EscalateIssue: _escalate_issue,
    cmd.ResolveIssue: _resolve_issue,
    cmd.DecideApproval: _decide_approval,
    cmd.RecordPlanEvaluation: _record_plan_evaluation,
    cmd.RequestSupport: support.request_support,
    cmd.AcknowledgeSupport: support.acknowledge_support,
    cmd.AnswerSupport: support.answer_support,
    cmd.DeclineSupport: support.decline_support,
    cmd.CloseSupport: support.close_support,
}
assert set(_DECIDERS) == set(cmd.COMMANDS.values()), "every command needs a decider"
