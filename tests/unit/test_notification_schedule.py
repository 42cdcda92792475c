"""The deadline schedule over plain events: which alerts, when, and never twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.notifications.domain.schedule import Policy, Schedule
from shared.contract import catalog as c
from shared.contract.codes import CooperationField, Department
from shared.contract.envelope import AnyEvent, new_event

T0 = datetime(2027, 1, 1, tzinfo=UTC)
POLICY = Policy(
    lead_times=(timedelta(days=30), timedelta(days=7), timedelta(days=1)),
    grace=timedelta(hours=1),
    escalate_after=timedelta(days=7),
)


def at(moment: datetime, data: c.EventData) -> AnyEvent:
    return new_event(data, actor="u-jilin", actordept=Department.JILIN, time=moment)


def schedule_with_milestone(due: datetime, known: datetime = T0) -> Schedule:
    schedule = Schedule(POLICY)
    schedule.apply(
        at(
            known,
            c.TaskCreated(
                task_id="t", plan_id="p", title="Task", field=CooperationField.TRADE, due=due + timedelta(days=400)
            ),
        )
    )
    schedule.apply(
        at(
            known,
            c.TaskAssigned(task_id="t", lead_department=Department.JILIN, supporting_departments=(Department.MOFCOM,)),
        )
    )
    schedule.apply(at(known, c.MilestoneScheduled(task_id="t", milestone_id="m", title="Milestone", due=due)))
    return schedule


def fired(schedule: Schedule, until: datetime, step: timedelta = timedelta(hours=1)) -> list[tuple[datetime, str]]:
    moments, now = [], T0
    while now <= until:
        for alert in schedule.due_alerts(now):
            if getattr(alert, "milestone_id", None) == "m":
                moments.append((now, alert.event_type.split(".")[3]))
        now += step
    return moments


def test_a_deadline_gets_each_lead_time_then_due_overdue_and_escalation() -> None:
    due = T0 + timedelta(days=60)
    kinds = fired(schedule_with_milestone(due), due + timedelta(days=10))
    assert kinds == [
        (due - timedelta(days=30), "deadline_approaching"),
        (due - timedelta(days=7), "deadline_approaching"),
        (due - timedelta(days=1), "deadline_approaching"),
        (due, "deadline_due"),
        (due + timedelta(hours=1), "overdue"),
        (due + timedelta(days=7, hours=1), "escalated"),
    ]


def test_inside_lead_times_when_scheduled_only_the_nearest_is_sent() -> None:
    due = T0 + timedelta(days=5)
    kinds = fired(schedule_with_milestone(due), due + timedelta(hours=2))
    assert kinds[:3] == [
        (T0, "deadline_approaching"),
        (due - timedelta(days=1), "deadline_approaching"),
        (due, "deadline_due"),
    ]


def test_a_met_milestone_stops_its_alerts() -> None:
    due = T0 + timedelta(days=3)
    schedule = schedule_with_milestone(due)
    assert fired(schedule, T0) == [(T0, "deadline_approaching")]
    schedule.apply(at(T0 + timedelta(days=1), c.MilestoneMet(task_id="t", milestone_id="m")))
    assert fired(schedule, due + timedelta(days=30)) == []


def test_a_completed_task_stops_everything_and_a_changed_deadline_reschedules() -> None:
    schedule = Schedule(POLICY)
    schedule.apply(
        at(
            T0,
            c.TaskCreated(
                task_id="t", plan_id="p", title="T", field=CooperationField.TRADE, due=T0 + timedelta(days=2)
            ),
        )
    )
    schedule.apply(at(T0, c.TaskDeadlineChanged(task_id="t", due=T0 + timedelta(days=20), reason="moved")))
    alerts = schedule.due_alerts(T0 + timedelta(days=3))
    assert [a.event_type.split(".")[3] for a in alerts] == ["deadline_approaching"], "only the new deadline counts"
    assert isinstance(alerts[0], c.DeadlineApproaching) and alerts[0].due == T0 + timedelta(days=20)
    schedule.apply(at(T0 + timedelta(days=4), c.TaskCompleted(task_id="t")))
    assert schedule.due_alerts(T0 + timedelta(days=60)) == []


def test_alert_ids_are_stable_so_a_rebuilt_schedule_skips_what_was_emitted() -> None:
    due = T0 + timedelta(days=2)
    first = schedule_with_milestone(due)
    emitted = first.due_alerts(due)
    rebuilt = schedule_with_milestone(due)
    rebuilt.emitted = {alert.alert_id for alert in emitted}
    assert rebuilt.due_alerts(due) == []
    assert [a.alert_id for a in schedule_with_milestone(due).due_alerts(due)] == [a.alert_id for a in emitted]


def test_an_escalated_issue_alerts_the_state_council_at_once() -> None:
    schedule = schedule_with_milestone(T0 + timedelta(days=90))
    (alert,) = schedule.apply(at(T0, c.IssueEscalated(issue_id="i", task_id="t", reason="needs SC")))
    assert (
        isinstance(alert, c.AlertEscalated)
        and alert.escalated_to == "SC"
        and "NDRC" in alert.departments
        and "JILIN" in alert.departments
    )


def test_a_task_and_its_milestone_due_at_the_same_moment_both_alert() -> None:
    schedule = Schedule(POLICY)
    schedule.apply(
        at(
            T0,
            c.TaskCreated(
                task_id="t", plan_id="p", title="T", field=CooperationField.TRADE, due=T0 + timedelta(days=2)
            ),
        )
    )
    schedule.apply(at(T0, c.MilestoneScheduled(task_id="t", milestone_id="m", title="M", due=T0 + timedelta(days=2))))
    alerts = schedule.due_alerts(T0 + timedelta(days=2))
    assert sorted((getattr(a, "milestone_id", None) or "-", a.event_type.split(".")[3]) for a in alerts) == [
        ("-", "deadline_approaching"),
        ("-", "deadline_approaching"),
        ("-", "deadline_due"),
        ("m", "deadline_approaching"),
        ("m", "deadline_approaching"),
        ("m", "deadline_due"),
    ]  # 7-day and 1-day


def test_a_deadline_at_the_end_of_the_calendar_does_not_stop_the_schedule() -> None:
    """Computing its escalation time used to overflow, stalling the consumer on every replay."""
    from services.notifications.domain.schedule import Deadline, planned_alerts

    far = datetime(9999, 12, 31, tzinfo=UTC)
    plan = planned_alerts(Deadline("t", None, "Far", far, T0, ()), POLICY)
    assert [p.kind for p in plan][-3:] == ["due", "overdue", "escalated"]
    assert plan[-1].at.year == 9999
    schedule = schedule_with_milestone(datetime(2199, 1, 1, tzinfo=UTC))
    assert schedule.due_alerts(T0 + timedelta(days=1)) == []
