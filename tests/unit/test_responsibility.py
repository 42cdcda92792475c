"""Who answers for what, over plain data: the lead for its task's lateness and risk, a
supporting department for the support asked of it (issue 29)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from services.audit.domain.accounts import responsibility
from services.tasks.domain import commands as cmd
from shared.contract.codes import CooperationField, Department, Severity
from tests.unit.test_tasks_rules import JILIN, SC, Scenario, actor

NOW = datetime.now(UTC)
MOFCOM = actor("MOFCOM", "supporter")


def late_task_with_support_ignored() -> Scenario:
    """JILIN leads a task MOFCOM and GACC support; the task runs late; JILIN asks both for help;
    MOFCOM answers in time, GACC never does."""
    world = Scenario()
    world.run(cmd.ApprovePlan(plan_id="p", title="Plan", evaluation_interval_months=6), SC)
    world.run(
        cmd.CreateTask(
            task_id="t",
            plan_id="p",
            title="Bonded zone",
            field=CooperationField.TRADE,
            lead_department=Department.JILIN,
            supporting_departments=(Department.MOFCOM, Department.GACC),
            due=NOW + timedelta(days=2),
        ),
        JILIN,
    )
    world.run(cmd.ReportIssue(issue_id="i", task_id="t", title="Customs rules", severity=Severity.MAJOR), JILIN)
    asked = cmd.RequestSupport(
        request_id="r",
        issue_id="i",
        departments=(Department.MOFCOM, Department.GACC),
        need="rules",
        by=NOW + timedelta(days=1),
    )
    world.run(asked, JILIN)
    world.run(cmd.AnswerSupport(request_id="r", answer="sent"), MOFCOM)
    return world


def test_a_supporting_department_does_not_answer_for_the_leads_lateness() -> None:
    world = late_task_with_support_ignored()
    table = responsibility(world.projection, Counter(), Counter({"t": 1}), NOW + timedelta(days=10))
    assert {k: table["JILIN"][k] for k in ("lead", "late", "escalated")} == {"lead": 1, "late": 1, "escalated": 1}
    assert {k: table["MOFCOM"][k] for k in ("supporting", "late", "escalated")} == {
        "supporting": 1,
        "late": 0,
        "escalated": 0,
    }
    assert table["MOFCOM"]["support_answered_in_time"] == 1


def test_a_department_that_never_answered_is_shown_as_such() -> None:
    world = late_task_with_support_ignored()
    before = responsibility(world.projection, Counter(), Counter(), NOW)
    after = responsibility(world.projection, Counter(), Counter(), NOW + timedelta(days=10))
    assert before["GACC"]["support_unanswered"] == 0, "not yet past the date asked"
    assert after["GACC"]["support_unanswered"] == 1
    assert after["GACC"]["support_late"] == after["GACC"]["late"] == 0
