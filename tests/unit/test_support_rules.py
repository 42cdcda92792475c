"""Support requests as decide/evolve over plain data: the lead (or the NDRC) asks State Council
departments; only an asked department answers, and only for itself; the requester closes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.tasks.domain import commands as cmd
from shared.auth import Actor
from shared.contract import catalog as c
from shared.contract.codes import CooperationField, Department, Severity
from shared.domain.refusals import Conflict, Forbidden, Invalid, NotFound
from shared.domain.state import AnswerState
from tests.unit.test_tasks_rules import DUE, JILIN, MIIT, NAO, NDRC, SC, Scenario, actor, refuse

MOFCOM = actor("MOFCOM", "supporter")
GACC = actor("GACC", "supporter")
MEE = actor("MEE", "supporter")
BY = datetime(2027, 3, 1, tzinfo=UTC)


@pytest.fixture
def world() -> Scenario:
    scenario = Scenario()
    scenario.run(cmd.ApprovePlan(plan_id="plan", title="Overall Plan"), SC)
    scenario.run(
        cmd.CreateTask(
            task_id="t",
            plan_id="plan",
            title="Trade",
            field=CooperationField.TRADE,
            lead_department=Department.JILIN,
            supporting_departments=(Department.MIIT,),
            due=DUE,
        ),
        JILIN,
    )
    scenario.run(
        cmd.ReportIssue(task_id="t", issue_id="i", title="Bonded zone stalled", severity=Severity.MAJOR), JILIN
    )
    return scenario


def ask(
    world: Scenario,
    who: Actor = JILIN,
    departments: tuple[Department, ...] = (Department.MOFCOM, Department.GACC),
    request_id: str = "sr",
) -> list[c.EventData]:
    return world.run(
        cmd.RequestSupport(
            issue_id="i", request_id=request_id, departments=departments, need="customs and trade guidance", by=BY
        ),
        who,
    )


def test_support_is_asked_for_by_a_moment_still_to_come(world: Scenario) -> None:
    """Issue 28, item 6: a request whose answer was due before it was asked was recorded."""
    for by in (world.now - timedelta(days=1), world.now):
        refuse(
            world,
            cmd.RequestSupport(issue_id="i", request_id="x", departments=(Department.MOFCOM,), need="n", by=by),
            JILIN,
            Invalid,
        )
    later = cmd.RequestSupport(
        issue_id="i", request_id="x", departments=(Department.MOFCOM,), need="n", by=world.now + timedelta(minutes=1)
    )
    assert [type(e) for e in world.run(later, JILIN)] == [c.SupportRequested]


def test_the_lead_or_the_supervisor_asks_state_council_departments(world: Scenario) -> None:
    for who in (MIIT, SC, NAO, MOFCOM):
        refuse(
            world,
            cmd.RequestSupport(issue_id="i", request_id="x", departments=(Department.MOFCOM,), need="n", by=BY),
            who,
            Forbidden,
        )
    for departments in (("JILIN",), ("SC",), ("MOFCOM", "MOFCOM"), ("NAO",)):
        refuse(
            world,
            cmd.RequestSupport.model_validate(
                {"issue_id": "i", "request_id": "x", "departments": departments, "need": "n", "by": BY}
            ),
            JILIN,
            Invalid,
        )
    refuse(
        world,
        cmd.RequestSupport(issue_id="nope", request_id="x", departments=(Department.MOFCOM,), need="n", by=BY),
        JILIN,
        NotFound,
    )
    assert [type(e) for e in ask(world)] == [c.SupportRequested]
    assert [type(e) for e in ask(world, NDRC, (Department.MEE,), "sr-2")] == [c.SupportRequested]
    request = world.support_request("sr")
    assert [(a.department, a.state) for a in request.answers] == [("MOFCOM", "asked"), ("GACC", "asked")]
    assert request.requested_by_department == "JILIN"


def test_only_an_asked_department_answers_and_only_for_itself(world: Scenario) -> None:
    ask(world)
    for who in (MEE, JILIN, NDRC, actor("MOFCOM", "auditor")):
        refuse(world, cmd.AcknowledgeSupport(request_id="sr"), who, Forbidden)
        refuse(world, cmd.AnswerSupport(request_id="sr", answer="done"), who, Forbidden)
    assert [type(e) for e in world.run(cmd.AcknowledgeSupport(request_id="sr"), MOFCOM)] == [c.SupportAcknowledged]
    refuse(world, cmd.AcknowledgeSupport(request_id="sr"), MOFCOM, Conflict)
    answered = world.run(cmd.AnswerSupport(request_id="sr", answer="guidance issued"), MOFCOM)
    assert isinstance(answered[0], c.SupportAnswered)
    assert answered[0].department == "MOFCOM", "the department is the actor's, never the body's"
    refuse(world, cmd.DeclineSupport(request_id="sr", reason="changed our mind"), MOFCOM, Conflict)
    world.run(cmd.DeclineSupport(request_id="sr", reason="outside customs' remit"), GACC)
    answers = {str(a.department): a for a in world.support_request("sr").answers}
    assert (answers["MOFCOM"].state, answers["MOFCOM"].answer) == (AnswerState.ANSWERED, "guidance issued")
    assert answers["MOFCOM"].acknowledged_at is not None
    assert (answers["GACC"].state, answers["GACC"].reason) == (AnswerState.DECLINED, "outside customs' remit")
    assert answers["GACC"].acknowledged_at is not None, "declining is acknowledging too"


def test_the_requester_closes_and_then_nobody_answers(world: Scenario) -> None:
    ask(world)
    for who in (MOFCOM, NDRC, actor("JILIN", "auditor")):
        refuse(world, cmd.CloseSupport(request_id="sr"), who, Forbidden)
    assert [type(e) for e in world.run(cmd.CloseSupport(request_id="sr", note="resolved"), JILIN)] == [
        c.SupportRequestClosed
    ]
    refuse(world, cmd.AnswerSupport(request_id="sr", answer="late"), GACC, Conflict)
    refuse(world, cmd.CloseSupport(request_id="sr"), JILIN, Conflict)


def test_a_resolved_issue_takes_no_more_requests(world: Scenario) -> None:
    world.run(cmd.ResolveIssue(issue_id="i", resolution="zone approved"), JILIN)
    refuse(
        world,
        cmd.RequestSupport(issue_id="i", request_id="x", departments=(Department.MOFCOM,), need="n", by=BY),
        JILIN,
        Conflict,
    )
