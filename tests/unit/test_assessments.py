"""What the system records as time passes, over plain data: a task's health when it changes
(once per change), and a plan's evaluation falling due (once per due date, by its interval)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from services.tasks.domain import commands as cmd
from services.tasks.domain.assessments import evaluation_due, health_change
from services.tasks.domain.decide import decide
from shared.contract import catalog as c
from shared.contract.codes import CooperationField, Department, Rating
from shared.contract.envelope import new_event
from shared.domain.calendar import months_after
from tests.unit.test_tasks_rules import JILIN, NDRC, SC, Scenario

T0 = datetime(2027, 1, 31, 9, 0, tzinfo=UTC)


def system(world: Scenario, events: Sequence[c.EventData], at: datetime) -> None:
    for data in events:
        current = world.projection.aggregates.get(data.subject)
        world.projection.apply(
            new_event(
                data, actor="policytrack-tasks", time=at, aggregateversion=(current.version if current else 0) + 1
            )
        )


def test_months_after_keeps_the_day_or_the_months_last() -> None:
    assert months_after(T0, 1) == datetime(2027, 2, 28, 9, 0, tzinfo=UTC)
    assert months_after(T0, 6) == datetime(2027, 7, 31, 9, 0, tzinfo=UTC)
    assert months_after(T0, 13) == datetime(2028, 2, 29, 9, 0, tzinfo=UTC)


def test_health_is_recorded_once_per_change() -> None:
    world = Scenario()
    world.run(cmd.ApprovePlan(plan_id="p", title="Plan"), SC)
    world.run(
        cmd.CreateTask(
            task_id="t",
            plan_id="p",
            title="Trade",
            field=CooperationField.TRADE,
            lead_department=Department.JILIN,
            due=datetime(2030, 1, 1, tzinfo=UTC),
        ),
        JILIN,
    )
    world.run(cmd.ScheduleMilestone(task_id="t", milestone_id="m", title="Window", due=T0 + timedelta(days=3)), JILIN)
    task = world.task("t")
    changed = health_change(task, T0)
    assert [(e.health, e.previous) for e in changed] == [("at_risk", "on_track")]
    system(world, changed, T0)
    assert health_change(world.task("t"), T0 + timedelta(hours=1)) == [], "no change, nothing recorded"
    late = health_change(world.task("t"), T0 + timedelta(days=4))
    assert [(e.health, e.previous) for e in late] == [("late", "at_risk")]


def test_an_evaluation_falls_due_once_per_interval_and_a_plan_evaluation_resets_it() -> None:
    world = Scenario()
    world.run(cmd.ApprovePlan(plan_id="p", title="Plan", evaluation_interval_months=6), SC)
    plan = world.plan("p")
    approved = plan.created_at
    assert evaluation_due(plan, world.projection, approved + timedelta(days=150)) == []
    due_at = months_after(approved, 6)
    falling = evaluation_due(plan, world.projection, due_at + timedelta(minutes=1))
    assert [(type(e), e.due) for e in falling] == [(c.PlanEvaluationDue, due_at)]
    system(world, falling, due_at)
    assert evaluation_due(world.plan("p"), world.projection, due_at + timedelta(days=1)) == []
    evaluated = due_at + timedelta(days=2)
    decided = decide(
        cmd.RecordPlanEvaluation(plan_id="p", evaluation_id="e", rating=Rating.FAIR),
        NDRC,
        world.projection,
        at=world.now,
    )
    system(world, decided, evaluated)
    assert world.projection.last_plan_evaluation("p") == evaluated
    assert evaluation_due(world.plan("p"), world.projection, due_at + timedelta(days=10)) == []
    assert evaluation_due(world.plan("p"), world.projection, months_after(evaluated, 6))[0].due == (
        months_after(evaluated, 6)
    )


def test_a_plan_without_an_interval_never_falls_due_and_an_amendment_sets_one() -> None:
    world = Scenario()
    world.run(cmd.ApprovePlan(plan_id="p", title="Plan"), SC)
    assert evaluation_due(world.plan("p"), world.projection, T0 + timedelta(days=3650)) == []
    world.run(cmd.AmendPlan(plan_id="p", summary="Evaluate every quarter", evaluation_interval_months=3), SC)
    assert world.plan("p").evaluation_interval_months == 3
