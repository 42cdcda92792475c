"""Every rule of the division of responsibilities, as decide/evolve over plain data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from services.tasks.domain import commands as cmd
from services.tasks.domain.decide import Conflict, Forbidden, Invalid, NotFound, decide
from shared.auth import Actor
from shared.contract import catalog as c
from shared.contract.codes import ApprovalKind, CooperationField, Department, Rating, Role, Severity
from shared.contract.envelope import AnyEvent, new_event
from shared.domain.projection import Projection
from shared.domain.state import Issue, IssueStatus, Milestone, Plan, SupportRequest, Task, TaskStatus

DUE = datetime(2027, 6, 30, tzinfo=UTC)


def actor(department: str, *roles: str, user: str | None = None) -> Actor:
    return Actor(
        user=user or f"u-{department.lower()}",
        department=Department(department),
        roles=frozenset(Role(role) for role in roles),
    )


SC = actor("SC", "approver")
JILIN = actor("JILIN", "implementer")
MIIT = actor("MIIT", "supporter")
MOST = actor("MOST", "supporter")
NDRC = actor("NDRC", "supervisor")
NAO = actor("NAO", "auditor")
ADMIN = actor("JILIN", "admin", user="u-admin")


Found = TypeVar("Found")


def present(found: Found | None, what: str) -> Found:
    assert found is not None, f"no {what} in this world"
    return found


class Scenario:
    """A world rebuilt from events, as the service rebuilds it from the log."""

    def __init__(self, now: datetime = datetime(2026, 6, 1, tzinfo=UTC)) -> None:
        self.projection = Projection()
        self.events: list[AnyEvent] = []
        self.now = now
        """The moment the commands are decided at."""

    def plan(self, plan_id: str) -> Plan:
        return present(self.projection.plan(plan_id), f"plan {plan_id}")

    def task(self, task_id: str) -> Task:
        return present(self.projection.task(task_id), f"task {task_id}")

    def milestone(self, task_id: str, milestone_id: str) -> Milestone:
        return present(self.task(task_id).milestone(milestone_id), f"milestone {milestone_id} of task {task_id}")

    def support_request(self, request_id: str) -> SupportRequest:
        return present(self.projection.support_request(request_id), f"support request {request_id}")

    def issue(self, issue_id: str) -> Issue:
        return present(self.projection.issue(issue_id), f"issue {issue_id}")

    def run(self, command: cmd.Command, who: Actor) -> list[c.EventData]:
        events = decide(command, who, self.projection, at=self.now)
        # With several writers, a command is decided by the owner of its subject's partition.
        assert {data.subject for data in events} <= {command.subject_id}, "events about another aggregate"
        for data in events:
            current = self.projection.aggregates.get(data.subject)
            version = (current.version if current else 0) + 1
            event = new_event(data, actor=who.user, actordept=who.department, aggregateversion=version)
            self.projection.apply(event)
            self.events.append(event)
        return events


@pytest.fixture
def world() -> Scenario:
    scenario = Scenario()
    scenario.run(cmd.ApprovePlan(plan_id="plan", title="Overall Plan"), SC)
    scenario.run(
        cmd.CreateTask(
            task_id="t",
            plan_id="plan",
            title="Hydrogen cluster",
            field=CooperationField.INDUSTRY,
            lead_department=Department.JILIN,
            supporting_departments=(Department.MIIT,),
            due=DUE,
        ),
        JILIN,
    )
    return scenario


def refuse(world: Scenario, command: cmd.Command, who: Actor, error: type[Exception], match: str | None = None) -> None:
    before = dict(world.projection.aggregates)
    with pytest.raises(error, match=match):
        world.run(command, who)
    assert world.projection.aggregates == before


# --- plans and tasks ---------------------------------------------------------------------------


def test_only_the_state_council_as_approver_approves_a_plan() -> None:
    scenario = Scenario()
    for who in (JILIN, NDRC, actor("SC", "implementer")):
        refuse(scenario, cmd.ApprovePlan(plan_id="p", title="x"), who, Forbidden)
    assert [type(e) for e in scenario.run(cmd.ApprovePlan(plan_id="p", title="x"), SC)] == [c.PlanApproved]
    assert scenario.plan("p").approved_by == "u-sc"


def test_tasks_are_created_by_sc_or_jilin_in_an_approved_plan_and_assigned_at_once(world: Scenario) -> None:
    task = world.task("t")
    assert (task.lead_department, task.supporting_departments, task.version) == ("JILIN", ("MIIT",), 2)
    create = cmd.CreateTask(
        task_id="t2",
        plan_id="plan",
        title="x",
        field=CooperationField.TRADE,
        lead_department=Department.MOFCOM,
        due=DUE,
    )
    for who in (MIIT, NDRC, MOST, NAO):
        refuse(world, create, who, Forbidden)
    refuse(world, create.model_copy(update={"plan_id": "nope"}), SC, NotFound)
    assert [type(e) for e in world.run(create, SC)] == [c.TaskCreated, c.TaskAssigned]


def test_a_task_has_exactly_one_lead_that_is_not_also_supporting(world: Scenario) -> None:
    create = cmd.CreateTask(
        task_id="t3",
        plan_id="plan",
        title="x",
        field=CooperationField.TRADE,
        lead_department=Department.MOFCOM,
        supporting_departments=(Department.MOFCOM, Department.GACC),
        due=DUE,
    )
    refuse(world, create, JILIN, Invalid, "lead department")
    refuse(world, create.model_copy(update={"supporting_departments": ("GACC", "GACC")}), JILIN, Invalid, "twice")


def test_a_task_belongs_to_one_field_of_cooperation() -> None:
    with pytest.raises(ValueError, match="field"):
        cmd.CreateTask.model_validate(
            {"task_id": "t", "plan_id": "p", "title": "x", "field": "tourism", "lead_department": "JILIN", "due": DUE}
        )


def test_creating_an_existing_task_conflicts(world: Scenario) -> None:
    create = cmd.CreateTask(
        task_id="t", plan_id="plan", title="x", field=CooperationField.TRADE, lead_department=Department.MOFCOM, due=DUE
    )
    refuse(world, create, JILIN, Conflict)


# --- work on a task ------------------------------------------------------------------------------


WORK = [
    cmd.ScheduleMilestone(task_id="t", milestone_id="m9", title="Land", due=DUE),
    cmd.ReportProgress(task_id="t", percent=10),
    cmd.ReportIssue(task_id="t", issue_id="i9", title="Delay", severity=Severity.HIGH),
    cmd.RequestApproval(task_id="t", approval_id="a9", kind=ApprovalKind.POLICY, title="Tax policy"),
]


@pytest.mark.parametrize("command", WORK, ids=lambda command: command.name)
def test_only_the_lead_or_a_supporting_department_works_on_a_task(world: Scenario, command: cmd.Command) -> None:
    for who in (MOST, NDRC, SC, NAO, actor("JILIN", "auditor")):
        refuse(world, command, who, Forbidden)
    assert world.run(command, MIIT)


def test_milestones_are_scheduled_and_met_once(world: Scenario) -> None:
    world.run(cmd.ScheduleMilestone(task_id="t", milestone_id="m1", title="Land", due=DUE), JILIN)
    refuse(world, cmd.MarkMilestoneMet(task_id="t", milestone_id="m1"), MOST, Forbidden)
    refuse(world, cmd.MarkMilestoneMet(task_id="t", milestone_id="m404"), JILIN, NotFound)
    world.run(cmd.MarkMilestoneMet(task_id="t", milestone_id="m1"), MIIT)
    milestone = world.milestone("t", "m1")
    assert milestone.met and milestone.met_by == "u-miit"
    refuse(world, cmd.MarkMilestoneMet(task_id="t", milestone_id="m1"), JILIN, Conflict, "already met")


def test_progress_is_0_to_100_and_goes_back_only_with_a_note(world: Scenario) -> None:
    with pytest.raises(ValueError):
        cmd.ReportProgress(task_id="t", percent=101)
    with pytest.raises(ValueError):
        cmd.ReportProgress(task_id="t", percent=-1)
    world.run(cmd.ReportProgress(task_id="t", percent=60, note="site ready"), JILIN)
    refuse(world, cmd.ReportProgress(task_id="t", percent=50), JILIN, Invalid, "note")
    world.run(cmd.ReportProgress(task_id="t", percent=50, note="permit withdrawn"), JILIN)
    assert world.task("t").percent == 50


def test_completing_needs_every_milestone_met_and_the_lead(world: Scenario) -> None:
    world.run(cmd.ScheduleMilestone(task_id="t", milestone_id="m1", title="Land", due=DUE), JILIN)
    refuse(world, cmd.CompleteTask(task_id="t"), JILIN, Conflict, "m1")
    world.run(cmd.MarkMilestoneMet(task_id="t", milestone_id="m1"), JILIN)
    refuse(world, cmd.CompleteTask(task_id="t"), MIIT, Forbidden)
    world.run(cmd.CompleteTask(task_id="t"), JILIN)
    assert (world.task("t").status, world.task("t").percent) == (TaskStatus.COMPLETED, 100)


@pytest.mark.parametrize(
    "close",
    [cmd.CompleteTask(task_id="t"), cmd.CancelTask(task_id="t", reason="merged")],
    ids=["completed", "cancelled"],
)
def test_a_closed_task_accepts_no_more_writes(world: Scenario, close: cmd.Command) -> None:
    world.run(close, JILIN)
    for command in [
        *WORK,
        cmd.CompleteTask(task_id="t"),
        cmd.CancelTask(task_id="t", reason="x"),
        cmd.ChangeDeadline(task_id="t", due=DUE, reason="x"),
        cmd.ReassignTask(task_id="t", lead_department=Department.MIIT),
    ]:
        refuse(world, command, JILIN, Conflict, "accepts no more writes")


def test_only_sc_or_jilin_cancel_reassign_or_move_the_deadline(world: Scenario) -> None:
    for command in (
        cmd.CancelTask(task_id="t", reason="x"),
        cmd.ReassignTask(task_id="t", lead_department=Department.MIIT),
        cmd.ChangeDeadline(task_id="t", due=DUE + timedelta(days=30), reason="x"),
    ):
        refuse(world, command, MIIT, Forbidden)
    world.run(
        cmd.ReassignTask(task_id="t", lead_department=Department.CHANGCHUN, supporting_departments=(Department.MIIT,)),
        SC,
    )
    assert world.task("t").lead_department == "CHANGCHUN"
    refuse(world, cmd.ReportProgress(task_id="t", percent=5), JILIN, Forbidden)
    world.run(cmd.ChangeDeadline(task_id="t", due=DUE + timedelta(days=30), reason="x"), JILIN)
    assert world.task("t").due == DUE + timedelta(days=30)


def test_unknown_tasks_are_not_found(world: Scenario) -> None:
    refuse(world, cmd.ReportProgress(task_id="nope", percent=5), JILIN, NotFound)


# --- supervision, escalation, approval --------------------------------------------------------------


def test_only_the_supervisor_records_evaluations(world: Scenario) -> None:
    evaluate = cmd.RecordEvaluation(task_id="t", evaluation_id="e1", rating=Rating.GOOD, findings="on schedule")
    for who in (JILIN, SC, MIIT, actor("NDRC", "auditor")):
        refuse(world, evaluate, who, Forbidden)
    assert [type(e) for e in world.run(evaluate, NDRC)] == [c.EvaluationRecorded]


def test_only_the_supervisor_escalates_an_issue_to_the_state_council_once(world: Scenario) -> None:
    world.run(cmd.ReportIssue(task_id="t", issue_id="i1", title="Customs", severity=Severity.MAJOR), JILIN)
    for who in (JILIN, SC, MIIT):
        refuse(world, cmd.EscalateIssue(issue_id="i1"), who, Forbidden)
    refuse(world, cmd.EscalateIssue(issue_id="nope"), NDRC, NotFound)
    (escalated,) = world.run(cmd.EscalateIssue(issue_id="i1", reason="needs SC"), NDRC)
    assert isinstance(escalated, c.IssueEscalated) and escalated.escalated_to == "SC"
    assert world.issue("i1").status is IssueStatus.ESCALATED
    refuse(world, cmd.EscalateIssue(issue_id="i1"), NDRC, Conflict)
    world.run(cmd.ResolveIssue(issue_id="i1", resolution="channel opened"), MIIT)
    refuse(world, cmd.ResolveIssue(issue_id="i1"), JILIN, Conflict, "already resolved")


def test_only_the_state_council_decides_an_approval_and_only_once(world: Scenario) -> None:
    world.run(
        cmd.RequestApproval(task_id="t", approval_id="a1", kind=ApprovalKind.MAJOR_PROJECT, title="Park phase 2"), JILIN
    )
    for who in (JILIN, NDRC, actor("SC", "auditor")):
        refuse(world, cmd.DecideApproval(approval_id="a1", granted=True), who, Forbidden)
    (granted,) = world.run(cmd.DecideApproval(approval_id="a1", granted=True, reason="in the plan"), SC)
    assert isinstance(granted, c.ApprovalGranted)
    refuse(world, cmd.DecideApproval(approval_id="a1", granted=False), SC, Conflict, "already decided")
    world.run(cmd.RequestApproval(task_id="t", approval_id="a2", kind=ApprovalKind.POLICY, title="Tax"), MIIT)
    (rejected,) = world.run(cmd.DecideApproval(approval_id="a2", granted=False, reason="no"), SC)
    assert isinstance(rejected, c.ApprovalRejected)


def test_auditors_and_admins_never_write(world: Scenario) -> None:
    for who in (NAO, ADMIN):
        for command in [
            *WORK,
            cmd.CompleteTask(task_id="t"),
            cmd.RecordEvaluation(task_id="t", evaluation_id="e", rating=Rating.GOOD),
        ]:
            refuse(world, command, who, Forbidden)


# --- evolve -------------------------------------------------------------------------------------------


def test_times_with_any_offset_are_stored_in_utc(world: Scenario) -> None:
    seoul = datetime(2027, 1, 1, 9, tzinfo=__import__("datetime").timezone(timedelta(hours=9)))
    world.run(cmd.ScheduleMilestone(task_id="t", milestone_id="m1", title="x", due=seoul), JILIN)
    assert world.milestone("t", "m1").due == datetime(2027, 1, 1, 0, tzinfo=UTC)
    assert world.milestone("t", "m1").due.tzinfo == UTC


def test_replaying_the_same_events_twice_changes_nothing(world: Scenario) -> None:
    world.run(cmd.ReportProgress(task_id="t", percent=30), JILIN)
    events = world.events
    again = Projection()
    for event in [*events, *events]:
        again.apply(event)
    assert again.aggregates == world.projection.aggregates


def test_a_task_is_overdue_when_open_and_its_deadline_or_an_unmet_milestone_passed(world: Scenario) -> None:
    task = world.task("t")
    assert not task.is_overdue(DUE - timedelta(days=1))
    assert task.is_overdue(DUE + timedelta(seconds=1))
    world.run(cmd.ScheduleMilestone(task_id="t", milestone_id="m1", title="x", due=DUE - timedelta(days=10)), JILIN)
    assert world.task("t").is_overdue(DUE - timedelta(days=1))
    world.run(cmd.MarkMilestoneMet(task_id="t", milestone_id="m1"), JILIN)
    assert not world.task("t").is_overdue(DUE - timedelta(days=1))


def test_an_id_is_unique_across_aggregate_types(world: Scenario) -> None:
    """A client-chosen issue id equal to an existing task id used to be appended, then fail to evolve."""
    refuse(
        world,
        cmd.ReportIssue(task_id="t", issue_id="t", title="x", severity=Severity.LOW),
        JILIN,
        Conflict,
        match="already the id of a Task",
    )
    refuse(
        world,
        cmd.CreateTask(
            task_id="plan",
            plan_id="plan",
            title="x",
            field=CooperationField.TRADE,
            lead_department=Department.JILIN,
            due=DUE,
        ),
        JILIN,
        Conflict,
        match="already the id of a Plan",
    )


def test_only_the_state_council_amends_a_plan(world: Scenario) -> None:
    amendment = cmd.AmendPlan(plan_id="plan", summary="Adds a trade facilitation chapter", title="Overall Plan (2027)")
    for who in (JILIN, NDRC, NAO, actor("SC", "auditor")):
        refuse(world, amendment, who, Forbidden)
    refuse(world, cmd.AmendPlan(plan_id="nope", summary="x"), SC, NotFound)
    assert [type(e) for e in world.run(amendment, SC)] == [c.PlanAmended]
    assert (world.plan("plan").title, world.plan("plan").summary) == ("Overall Plan (2027)", amendment.summary)
