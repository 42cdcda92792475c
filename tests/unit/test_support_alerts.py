"""The notifications schedule for support requests, a task going at risk and an evaluation
falling due, over plain events: which alerts, to whom, when, and never twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.notifications.domain.schedule import Policy, Schedule
from shared.contract import catalog as c
from shared.contract.codes import CooperationField, Department, TaskHealth
from shared.contract.envelope import AnyEvent, new_event

FRIDAY = datetime(2027, 1, 1, 9, 0, tzinfo=UTC)  # 2027-01-01 is a Friday


def at(moment: datetime, data: c.EventData) -> AnyEvent:
    return new_event(data, actor="u-jilin", actordept=Department.JILIN, time=moment)


def schedule() -> Schedule:
    s = Schedule(Policy())
    s.apply(
        at(
            FRIDAY,
            c.TaskCreated(
                task_id="t", plan_id="p", title="Trade", field=CooperationField.TRADE, due=FRIDAY + timedelta(days=400)
            ),
        )
    )
    s.apply(
        at(
            FRIDAY,
            c.TaskAssigned(task_id="t", lead_department=Department.JILIN, supporting_departments=(Department.GACC,)),
        )
    )
    return s


def test_an_unacknowledged_request_and_one_past_its_by_when_alert_the_department_and_the_ndrc() -> None:
    s = schedule()
    by = FRIDAY + timedelta(days=20)
    s.apply(
        at(
            FRIDAY,
            c.SupportRequested(
                request_id="sr",
                issue_id="i",
                task_id="t",
                departments=(Department.MOFCOM, Department.GACC),
                need="guidance",
                by=by,
            ),
        )
    )
    s.apply(
        at(
            FRIDAY + timedelta(days=1),
            c.SupportAcknowledged(request_id="sr", issue_id="i", task_id="t", department=Department.MOFCOM),
        )
    )
    assert s.due_alerts(FRIDAY + timedelta(days=6)) == []
    week_later = s.due_alerts(FRIDAY + timedelta(days=7))
    assert [(type(a), getattr(a, "department", None), a.departments) for a in week_later] == [
        (c.SupportUnacknowledged, "GACC", ("GACC", "NDRC"))
    ]
    assert s.due_alerts(FRIDAY + timedelta(days=8)) == [], "once"
    s.apply(
        at(
            FRIDAY + timedelta(days=9),
            c.SupportAnswered(request_id="sr", issue_id="i", task_id="t", department=Department.MOFCOM, answer="done"),
        )
    )
    overdue = s.due_alerts(by)
    assert [(type(a), getattr(a, "department", None)) for a in overdue] == [(c.SupportOverdue, "GACC")], (
        "MOFCOM answered in time"
    )


def test_a_closed_request_alerts_nobody() -> None:
    s = schedule()
    s.apply(
        at(
            FRIDAY,
            c.SupportRequested(
                request_id="sr",
                issue_id="i",
                task_id="t",
                departments=(Department.GACC,),
                need="guidance",
                by=FRIDAY + timedelta(days=2),
            ),
        )
    )
    s.apply(at(FRIDAY, c.SupportRequestClosed(request_id="sr", issue_id="i", task_id="t")))
    assert s.due_alerts(FRIDAY + timedelta(days=30)) == []


def test_going_at_risk_alerts_the_lead_and_the_ndrc_once_per_change() -> None:
    s = schedule()
    change = at(
        FRIDAY,
        c.TaskHealthChanged(task_id="t", health=TaskHealth.AT_RISK, previous=TaskHealth.ON_TRACK, reason="stalled"),
    )
    alerts = s.apply(change)
    assert [(type(a), a.departments) for a in alerts] == [(c.TaskAtRisk, ("JILIN", "NDRC"))]
    s.emitted.add(alerts[0].alert_id)
    assert s.apply(change) == [], "the same change read again is the same alert"
    assert (
        s.apply(at(FRIDAY, c.TaskHealthChanged(task_id="t", health=TaskHealth.LATE, previous=TaskHealth.AT_RISK))) == []
    )


def test_an_evaluation_falling_due_alerts_the_ndrc() -> None:
    s = schedule()
    s.apply(at(FRIDAY, c.PlanApproved(plan_id="p", title="Overall Plan", evaluation_interval_months=6)))
    alerts = s.apply(at(FRIDAY, c.PlanEvaluationDue(plan_id="p", due=FRIDAY)))
    assert [(type(a), a.departments, getattr(a, "plan_id", None)) for a in alerts] == [
        (c.EvaluationFallingDue, ("NDRC",), "p")
    ]
    assert isinstance(alerts[0], c.EvaluationFallingDue) and "Overall Plan" in alerts[0].title
