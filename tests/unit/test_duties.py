"""What each person may do on a task, and what each department must do (待办), over plain data:
the same rules that decide commands decide what is offered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.tasks.domain import commands as cmd
from services.tasks.domain.duties import duties, plan_actions, task_actions
from shared.auth import Actor
from shared.contract.codes import ApprovalKind, CooperationField, Department, Severity
from tests.unit.test_tasks_rules import JILIN, MIIT, NAO, NDRC, SC, Scenario, actor

NOW = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
MOFCOM = actor("MOFCOM", "supporter")
GACC = actor("GACC", "supporter")
MONTH = timedelta(days=30)


def world() -> Scenario:
    w = Scenario()
    w.run(cmd.ApprovePlan(plan_id="p", title="Overall Plan", evaluation_interval_months=6), SC)
    w.run(
        cmd.CreateTask(
            task_id="t",
            plan_id="p",
            title="Bonded zone",
            field=CooperationField.TRADE,
            lead_department=Department.JILIN,
            supporting_departments=(Department.MOFCOM, Department.GACC),
            due=NOW + timedelta(days=400),
        ),
        JILIN,
    )
    w.run(cmd.ScheduleMilestone(task_id="t", milestone_id="m", title="Customs rules", due=NOW + timedelta(10)), JILIN)
    w.run(cmd.ReportIssue(issue_id="i", task_id="t", title="Customs", severity=Severity.MAJOR), JILIN)
    w.run(
        cmd.RequestSupport(
            request_id="r", issue_id="i", departments=(Department.MOFCOM,), need="rules", by=NOW + MONTH
        ),
        JILIN,
    )
    w.run(cmd.RequestApproval(approval_id="a", task_id="t", kind=ApprovalKind.POLICY, title="Bonded rules"), JILIN)
    return w


def offered(w: Scenario, who: Actor) -> set[tuple[str, str]]:
    return {(a.command, a.target) for a in task_actions(w.projection, who, "t", NOW)}


def test_the_lead_may_report_progress_mark_its_milestone_and_complete_its_task_once_it_is_met() -> None:
    w = world()
    mine = offered(w, JILIN)
    assert {("report_progress", "t"), ("mark_milestone_met", "t")} <= mine
    assert ("complete_task", "t") not in mine, "a milestone is still open"
    w.run(cmd.MarkMilestoneMet(task_id="t", milestone_id="m"), JILIN)
    assert ("complete_task", "t") in offered(w, JILIN)
    assert ("decide_approval", "a") not in mine, "the State Council decides approvals"
    assert ("answer_support", "r") not in mine, "JILIN was not asked"


def test_an_asked_department_may_answer_and_the_state_council_may_decide() -> None:
    w = world()
    assert {("acknowledge_support", "r"), ("answer_support", "r"), ("decline_support", "r")} <= offered(w, MOFCOM)
    assert ("answer_support", "r") not in offered(w, GACC), "GACC supports the task but was not asked"
    assert ("decide_approval", "a") in offered(w, SC)
    assert ("record_evaluation", "t") in offered(w, NDRC)


def test_whoever_only_reads_is_offered_nothing() -> None:
    assert offered(world(), NAO) == set()
    assert offered(world(), MIIT) == set(), "a department with no part in the task"


def test_a_closed_task_offers_no_work_on_it() -> None:
    w = world()
    w.run(cmd.MarkMilestoneMet(task_id="t", milestone_id="m"), JILIN)
    w.run(cmd.CompleteTask(task_id="t"), JILIN)
    assert not {c for c, _ in offered(w, JILIN)} & {"report_progress", "complete_task", "mark_milestone_met"}


def test_plans_are_approved_by_the_state_council_and_evaluated_by_the_ndrc() -> None:
    w = world()
    assert "approve_plan" in {a.command for a in plan_actions(w.projection, SC, NOW)}
    assert "approve_plan" not in {a.command for a in plan_actions(w.projection, JILIN, NOW)}
    assert "create_task" in {a.command for a in plan_actions(w.projection, JILIN, NOW)}
    assert "record_plan_evaluation" in {a.command for a in plan_actions(w.projection, NDRC, NOW)}


def test_each_department_sees_its_own_list_most_urgent_first() -> None:
    w = world()
    assert [(d.kind, d.action.target) for d in duties(w.projection, MOFCOM, NOW, report_every=MONTH)] == [
        ("acknowledge_support", "r")
    ]
    w.run(cmd.AcknowledgeSupport(request_id="r"), MOFCOM)
    assert [d.kind for d in duties(w.projection, MOFCOM, NOW, report_every=MONTH)] == ["answer_support"]
    assert duties(w.projection, GACC, NOW, report_every=MONTH) == []
    assert [d.kind for d in duties(w.projection, SC, NOW, report_every=MONTH)] == ["decide_approval"]
    later = NOW + timedelta(days=40)
    jilin = duties(w.projection, JILIN, later, report_every=MONTH)
    assert [(d.kind, d.overdue) for d in jilin] == [("milestone_due", True), ("report_progress", True)]
    assert jilin[0].title == "Customs rules"
