"""The deadline schedule: which alerts each open deadline is due, and when. Pure.

A deadline is a task's or a milestone's due date. Its alerts are ``deadline_approaching`` at
each lead time before it (a deadline already inside some lead times when it is scheduled
gets only the nearest of those), ``deadline_due`` at the deadline, ``overdue`` after the
grace, and ``escalated`` to the supervisor a while after that. Each alert's id is derived
from (deadline, threshold), so the same alert is never two alerts.
"""

from __future__ import annotations

import heapq
import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from services.notifications.domain.support import SupportWatch
from shared.contract import catalog as c
from shared.contract.codes import Department, TaskHealth
from shared.contract.envelope import AnyEvent
from shared.domain.calendar import WorkingCalendar, months_after

ALERT_NAMESPACE = uuid.UUID("6f1d8c52-4a0b-4c8e-9a53-2f7c1d0e5b11")


@dataclass(frozen=True, slots=True)
class Policy:
    lead_times: tuple[timedelta, ...] = (timedelta(days=30), timedelta(days=7), timedelta(days=1))
    grace: timedelta = timedelta(0)
    escalate_after: timedelta = timedelta(days=7)
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar, compare=False)


@dataclass(slots=True)
class Deadline:
    """An open deadline. Slotted, not a model: the schedule holds one per open milestone."""

    task_id: str
    milestone_id: str | None
    title: str
    due: datetime
    known_since: datetime
    departments: tuple[Department, ...]


class ThresholdKind(StrEnum):
    APPROACHING = "approaching"
    DUE = "due"
    OVERDUE = "overdue"
    ESCALATED = "escalated"


@dataclass(frozen=True, slots=True)
class PlannedAlert:
    at: datetime
    kind: ThresholdKind
    lead_seconds: int = 0

    @property
    def threshold(self) -> str:
        """The threshold as alert ids are derived from it (``approaching:<seconds>`` or the kind)."""
        if self.kind is ThresholdKind.APPROACHING:
            return f"approaching:{self.lead_seconds}"
        return str(self.kind)


@dataclass(slots=True)
class TaskInfo:
    """What the schedule knows of a task: enough to title and address its alerts."""

    title: str = ""
    departments: tuple[Department, ...] = ()
    open: bool = True
    due: datetime | None = None


@dataclass(slots=True)
class Cadence:
    """How often a plan is evaluated as a whole, and since when: its approval, or its last
    evaluation as a whole."""

    interval_months: int | None
    since: datetime

    def next_due(self) -> datetime | None:
        return None if self.interval_months is None else months_after(self.since, self.interval_months)


def shifted(moment: datetime, delta: timedelta) -> datetime:
    """``moment + delta``, saturating at the ends of the calendar instead of overflowing: a
    deadline far in the future must not stop the schedule."""
    try:
        return moment + delta
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC) if delta > timedelta(0) else datetime.min.replace(tzinfo=UTC)


def alert_id(task_id: str, milestone_id: str | None, due: datetime, threshold: str) -> str:
    return str(uuid.uuid5(ALERT_NAMESPACE, f"{task_id}/{milestone_id or '-'}/{due.isoformat()}/{threshold}"))


def planned_alerts(deadline: Deadline, policy: Policy) -> list[PlannedAlert]:
    """Every alert of a deadline, in time order."""
    leads = sorted(policy.lead_times, reverse=True) if deadline.due > deadline.known_since else []
    passed = [lead for lead in leads if shifted(deadline.due, -lead) <= deadline.known_since]
    plan = []
    for lead in leads:
        if lead in passed and lead != min(passed):
            continue  # already inside it when scheduled: only the nearest passed one is sent
        at = max(shifted(deadline.due, -lead), deadline.known_since)
        plan.append(PlannedAlert(at, ThresholdKind.APPROACHING, int(lead.total_seconds())))
    overdue_at = shifted(deadline.due, policy.grace)
    plan += [
        PlannedAlert(deadline.due, ThresholdKind.DUE),
        PlannedAlert(overdue_at, ThresholdKind.OVERDUE),
        PlannedAlert(shifted(overdue_at, policy.escalate_after), ThresholdKind.ESCALATED),
    ]
    return sorted(plan, key=lambda alert: alert.at)


def alert_event(deadline: Deadline, planned: PlannedAlert, planned_id: str) -> c.DeadlineAlert:
    """The alert ``planned`` for ``deadline``, under the id ``alert_id`` derives for it."""
    common: dict[str, Any] = {
        "alert_id": planned_id,
        "task_id": deadline.task_id,
        "milestone_id": deadline.milestone_id,
        "title": deadline.title,
        "due": deadline.due,
        "departments": deadline.departments,
    }
    if planned.kind is ThresholdKind.APPROACHING:
        return c.DeadlineApproaching(**common, lead_seconds=planned.lead_seconds)
    if planned.kind is ThresholdKind.DUE:
        return c.DeadlineDue(**common)
    if planned.kind is ThresholdKind.OVERDUE:
        return c.DeadlineOverdue(**common)
    common["departments"] = (*deadline.departments, Department.NDRC)
    return c.AlertEscalated(**common, escalated_to=Department.NDRC, reason="overdue past the escalation period")


@dataclass
class Schedule:
    """Open deadlines from the log, and a heap of when each one next needs looking at."""

    policy: Policy
    deadlines: dict[tuple[str, str | None], Deadline] = field(default_factory=dict)
    tasks: dict[str, TaskInfo] = field(default_factory=dict)
    emitted: set[str] = field(default_factory=set)
    by_task: dict[str, set[tuple[str, str | None]]] = field(default_factory=dict)
    plans: dict[str, str] = field(default_factory=dict)
    """plan id -> title"""
    cadences: dict[str, Cadence] = field(default_factory=dict)
    """plan id -> when its evaluations fall due"""
    support: SupportWatch = field(default_factory=SupportWatch)
    _heap: list[tuple[datetime, int, tuple[str, str | None]]] = field(default_factory=list)
    _pushes: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.support.calendar = self.policy.calendar

    def departments_of(self, task_id: str) -> tuple[Department, ...] | None:
        """The task's lead and supporting departments, or None for a task not (yet) on the log."""
        task = self.tasks.get(task_id)
        return None if task is None else task.departments

    def apply(self, event: AnyEvent) -> list[c.Notice]:
        """Folds a domain event in; returns alerts it calls for at once (issue escalations, a
        task going at risk, an evaluation falling due)."""
        data = event.data
        if isinstance(data, c.SupportRequestEvent):
            self.support.apply(data, event.time, self.tasks.get(data.task_id, TaskInfo()).title or data.task_id)
            return []
        match data:
            case c.PlanApproved() | c.PlanAmended():
                self.plans[data.plan_id] = getattr(data, "title", None) or self.plans.get(data.plan_id, data.plan_id)
                self._cadence(data, event.time)
            case c.EvaluationRecorded(plan_id=str(plan_id), task_id=None) if plan_id in self.cadences:
                self.cadences[plan_id].since = event.time
            case c.PlanEvaluationDue():
                return self._evaluation_due(data, event.id)
            case c.TaskHealthChanged() if data.health is TaskHealth.AT_RISK:
                return self._at_risk(data, event.id)
            case c.IssueEscalated():
                return self._issue_escalated(data, event.time)
            case _:
                self._track(data, event.time)
        return []

    def _track(self, data: c.EventData, now: datetime) -> None:
        """What changes a task's deadlines: the task itself, its departments, its milestones."""
        match data:
            case c.TaskCreated():
                self.tasks[data.task_id] = TaskInfo(title=data.title, due=data.due)
                self._open(data.task_id, None, data.title, data.due, now)
            case c.TaskAssigned() | c.TaskReassigned():
                task = self.tasks.setdefault(data.task_id, TaskInfo())
                task.departments = (data.lead_department, *data.supporting_departments)
                for deadline in self._of_task(data.task_id):
                    deadline.departments = task.departments
            case c.TaskDeadlineChanged():
                self._close(data.task_id, None)
                if (changed := self.tasks.get(data.task_id)) and changed.open:
                    changed.due = data.due
                    self._open(data.task_id, None, changed.title, data.due, now)
            case c.MilestoneScheduled():
                if (owner := self.tasks.get(data.task_id)) and owner.open:
                    self._open(data.task_id, data.milestone_id, data.title, data.due, now)
            case c.MilestoneMet():
                self._close(data.task_id, data.milestone_id)
            case c.TaskCompleted() | c.TaskCancelled():
                if data.task_id in self.tasks:
                    self.tasks[data.task_id].open = False
                for deadline in list(self._of_task(data.task_id)):
                    self._close(deadline.task_id, deadline.milestone_id)

    def _cadence(self, data: c.PlanApproved | c.PlanAmended, now: datetime) -> None:
        if isinstance(data, c.PlanApproved):
            self.cadences[data.plan_id] = Cadence(data.evaluation_interval_months, now)
        elif data.evaluation_interval_months is not None:
            self.cadences.setdefault(data.plan_id, Cadence(None, now)).interval_months = data.evaluation_interval_months

    def _at_risk(self, data: c.TaskHealthChanged, event_id: str) -> list[c.Notice]:
        task = self.tasks.get(data.task_id, TaskInfo())
        lead = task.departments[:1]
        alert = c.TaskAtRisk(
            alert_id=str(uuid.uuid5(ALERT_NAMESPACE, f"health:{event_id}")),
            task_id=data.task_id,
            title=task.title or data.task_id,
            due=task.due or datetime.max.replace(tzinfo=UTC),
            departments=(*lead, Department.NDRC),
            reason=data.reason,
        )
        return [] if alert.alert_id in self.emitted else [alert]

    def _evaluation_due(self, data: c.PlanEvaluationDue, event_id: str) -> list[c.Notice]:
        alert = c.EvaluationFallingDue(
            alert_id=str(uuid.uuid5(ALERT_NAMESPACE, f"evaluation:{event_id}")),
            plan_id=data.plan_id,
            title=f"An evaluation of {self.plans.get(data.plan_id, data.plan_id)} is due",
            due=data.due,
            departments=(Department.NDRC,),
        )
        return [] if alert.alert_id in self.emitted else [alert]

    def _issue_escalated(self, data: c.IssueEscalated, at: datetime) -> list[c.Notice]:
        task = self.tasks.get(data.task_id, TaskInfo())
        escalation = c.AlertEscalated(
            alert_id=alert_id(data.task_id, None, at, f"issue:{data.issue_id}"),
            task_id=data.task_id,
            title=task.title or data.task_id,
            due=at,
            departments=(*task.departments, Department.NDRC),
            escalated_to=data.escalated_to,
            reason=f"issue {data.issue_id} escalated: {data.reason}".strip(),
        )
        return [] if escalation.alert_id in self.emitted else [escalation]

    def due_alerts(self, now: datetime) -> list[c.Notice]:
        """Alerts whose time has come and that were not emitted yet; reschedules the rest."""
        alerts: list[c.Notice] = self.support.due_alerts(now, self.emitted)
        self.emitted.update(alert.alert_id for alert in alerts)
        while self._heap and self._heap[0][0] <= now:
            _, _, key = heapq.heappop(self._heap)
            deadline = self.deadlines.get(key)
            if deadline is None:
                continue
            upcoming = None
            for planned in planned_alerts(deadline, self.policy):
                # The id first: an alert already emitted is not built again.
                planned_id = alert_id(deadline.task_id, deadline.milestone_id, deadline.due, planned.threshold)
                if planned_id in self.emitted:
                    continue
                if planned.at <= now:
                    alerts.append(alert_event(deadline, planned, planned_id))
                    self.emitted.add(planned_id)
                else:
                    upcoming = planned.at
                    break
            if upcoming is not None:
                self._push(upcoming, key)
            else:
                self._close(*key)  # every alert sent: nothing left to watch
        return alerts

    def next_wake(self) -> datetime | None:
        return self._heap[0][0] if self._heap else None

    @classmethod
    def resumed(
        cls,
        policy: Policy,
        deadlines: list[tuple[Deadline, datetime]],
        tasks: dict[str, TaskInfo],
        plans: dict[str, str],
        support: SupportWatch,
        cadences: dict[str, Cadence] | None = None,
    ) -> Schedule:
        """The schedule a snapshot kept: each deadline with when it is next looked at (from
        ``watch_times``). Which alerts were emitted is not kept: it is learned again from the
        alerts on the log."""
        schedule = cls(policy, tasks=tasks, plans=plans, support=support, cadences=cadences or {})
        for deadline, look_at in deadlines:
            schedule._watch(deadline, look_at)
        return schedule

    def watch_times(self) -> dict[tuple[str, str | None], datetime]:
        """When each open deadline is next looked at (its earliest entry in the heap)."""
        earliest: dict[tuple[str, str | None], datetime] = {}
        for at, _, key in self._heap:
            if key in self.deadlines and (key not in earliest or at < earliest[key]):
                earliest[key] = at
        return earliest

    def _open(self, task_id: str, milestone_id: str | None, title: str, due: datetime, now: datetime) -> None:
        departments = self.tasks.get(task_id, TaskInfo()).departments
        self._watch(Deadline(task_id, milestone_id, title, due, now, departments))

    def _watch(self, deadline: Deadline, look_at: datetime | None = None) -> None:
        key = (deadline.task_id, deadline.milestone_id)
        self.deadlines[key] = deadline
        self.by_task.setdefault(deadline.task_id, set()).add(key)
        self._push(look_at or min(p.at for p in planned_alerts(deadline, self.policy)), key)

    def _push(self, at: datetime, key: tuple[str, str | None]) -> None:
        heapq.heappush(self._heap, (at, next(self._pushes), key))  # the counter breaks ties before keys

    def _close(self, task_id: str, milestone_id: str | None) -> None:
        self.deadlines.pop((task_id, milestone_id), None)
        keys = self.by_task.get(task_id)
        if keys is not None:
            keys.discard((task_id, milestone_id))
            if not keys:
                del self.by_task[task_id]

    def _of_task(self, task_id: str) -> list[Deadline]:
        return [self.deadlines[key] for key in self.by_task.get(task_id, ()) if key in self.deadlines]
