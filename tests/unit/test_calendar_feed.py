"""Which deadlines a calendar feed shows, and who may keep it: plain data, no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from icalendar import Calendar

from services.notifications.adapters.ical import calendar_document
from services.notifications.domain.calendar_feed import Feed, entries, may_keep
from services.notifications.domain.schedule import Policy, Schedule
from shared.auth import Actor
from shared.contract import catalog as c
from shared.contract.codes import CooperationField, Department, Role
from shared.contract.envelope import new_event
from shared.i18n import BEIJING

NOW = datetime(2026, 12, 5, tzinfo=UTC)
JILIN = Actor(user="u-jilin", department=Department.JILIN, roles=frozenset({Role.IMPLEMENTER}))
GACC = Actor(user="u-gacc", department=Department.GACC, roles=frozenset({Role.SUPPORTER}))
NDRC = Actor(user="u-ndrc", department=Department.NDRC, roles=frozenset({Role.SUPERVISOR}))


def schedule() -> Schedule:
    schedule = Schedule(Policy())
    for data in (
        c.PlanApproved(plan_id="p", title="Overall Plan", evaluation_interval_months=6),
        c.TaskCreated(
            task_id="t-ours",
            plan_id="p",
            title="Bonded zone",
            field=CooperationField.TRADE,
            due=NOW + timedelta(days=30),
        ),
        c.TaskAssigned(task_id="t-ours", lead_department=Department.JILIN, supporting_departments=(Department.GACC,)),
        c.TaskCreated(
            task_id="t-theirs",
            plan_id="p",
            title="Trade fair",
            field=CooperationField.TRADE,
            due=NOW + timedelta(days=9),
        ),
        c.TaskAssigned(task_id="t-theirs", lead_department=Department.MOFCOM),
        c.MilestoneScheduled(task_id="t-ours", milestone_id="m-1", title="Station", due=NOW + timedelta(days=10)),
        c.SupportRequested(
            request_id="r-1", task_id="t-ours", issue_id="i-1", departments=(Department.GACC,), need="Customs", by=NOW
        ),
    ):
        schedule.apply(new_event(data, actor="u-jilin", time=NOW - timedelta(days=1)))
    return schedule


def feed(
    reader: Actor, scope: Literal["own", "all"] = "own", owner: Literal["department", "person"] = "person"
) -> Feed:
    return Feed("feed-1", owner, reader, scope, "zh-CN", "0" * 64, NOW)


def test_a_feed_holds_the_departments_own_deadlines_and_nothing_of_anothers() -> None:
    uids = [entry.uid for entry in entries(schedule(), feed(JILIN))]
    assert uids == ["milestone-m-1@policytrack", "task-t-ours@policytrack"]
    gacc = [entry.uid for entry in entries(schedule(), feed(GACC))]
    assert gacc == ["support-r-1-GACC@policytrack", "milestone-m-1@policytrack", "task-t-ours@policytrack"]
    ndrc = {entry.uid: entry for entry in entries(schedule(), feed(NDRC))}
    assert list(ndrc) == ["evaluation-p@policytrack"], "the supervisor's own: when evaluations fall due"
    assert ndrc["evaluation-p@policytrack"].due == datetime(2027, 6, 4, tzinfo=UTC)


def test_whoever_reads_everything_may_ask_for_all_of_it() -> None:
    everything = [entry.uid for entry in entries(schedule(), feed(NDRC, "all"))]
    assert "task-t-theirs@policytrack" in everything and "evaluation-p@policytrack" in everything
    assert "task-t-theirs@policytrack" not in [entry.uid for entry in entries(schedule(), feed(GACC, "all"))]


def test_the_document_is_icalendar_in_asia_shanghai_in_the_feeds_language() -> None:
    document = Calendar.from_ical(calendar_document(entries(schedule(), feed(JILIN)), "zh-CN", NOW))
    [zone] = document.walk("VTIMEZONE")
    assert zone["TZID"] == "Asia/Shanghai"
    task = next(e for e in document.walk("VEVENT") if e["uid"] == "task-t-ours@policytrack")
    assert task.decoded("dtstart") == (NOW + timedelta(days=30)).astimezone(BEIJING)
    assert str(task["summary"]) == "任务截止：Bonded zone"
    korean = Calendar.from_ical(calendar_document(entries(schedule(), feed(JILIN)), "ko", NOW))
    assert any(str(e["summary"]) == "과제 마감: Bonded zone" for e in korean.walk("VEVENT"))


def test_a_persons_feed_is_kept_by_that_person_a_departments_by_the_department() -> None:
    colleague = Actor(user="u-jilin-2", department=Department.JILIN, roles=frozenset({Role.IMPLEMENTER}))
    mine, ours = feed(JILIN), feed(JILIN, owner="department")
    assert may_keep(mine, JILIN) and not may_keep(mine, colleague) and not may_keep(mine, GACC)
    assert may_keep(ours, colleague) and not may_keep(ours, GACC)
