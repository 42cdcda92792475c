"""Working days and due dates as people in Beijing count them: the State Council's holidays and
make-up working days (调休), the deployment's zone, and a clear word for a year nobody knows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.notifications.domain.schedule import Policy, Schedule
from shared.contract import catalog as c
from shared.contract.codes import CooperationField, Department
from shared.contract.envelope import new_event
from shared.domain.calendar import WorkingCalendar, YearArrangement, arrangements

BEIJING = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkingCalendar()


def beijing(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BEIJING)


def test_five_working_days_from_monday_28_september_skip_national_day_and_end_on_a_make_up_saturday() -> None:
    """The issue's case: sent Monday 28 September 2026 in Beijing, flagged on 5 October (in the
    middle of the holiday) when working days were UTC weekdays."""
    sent = beijing(2026, 9, 28, 10, 0)
    due = CALENDAR.working_days_after(sent, 5)
    assert due == beijing(2026, 10, 10, 10, 0), "29, 30 September, 8, 9 October and Saturday 10 October (调休)"
    assert due.astimezone(BEIJING).weekday() == 5
    assert due.tzinfo == sent.tzinfo


def test_a_make_up_weekend_day_is_a_working_day_and_a_holiday_weekday_is_not() -> None:
    assert CALENDAR.is_working_day(date(2026, 10, 10))  # Saturday, worked for National Day
    assert CALENDAR.is_working_day(date(2026, 9, 20))  # Sunday, worked for National Day
    assert not CALENDAR.is_working_day(date(2026, 10, 5))  # Monday, National Day holiday
    assert not CALENDAR.is_working_day(date(2026, 10, 11))  # an ordinary Sunday


def test_working_days_are_counted_on_the_beijing_calendar_not_the_utc_one() -> None:
    """Monday 09:00 in Beijing is Sunday 01:00 UTC: counted from Monday, not from Sunday."""
    sent = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)  # Monday 30 November, 09:00 in Beijing
    assert CALENDAR.working_days_after(sent, 1) == datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # Tuesday 09:00


def test_due_dates_near_midnight_are_read_as_dates_in_beijing() -> None:
    assert CALENDAR.local_date(datetime.fromisoformat("2026-12-31T00:00+08:00")) == date(2026, 12, 31)
    assert CALENDAR.local_date(datetime(2026, 12, 30, 16, 0, tzinfo=UTC)) == date(2026, 12, 31)
    assert CALENDAR.local_date(datetime(2026, 12, 30, 15, 59, 59, tzinfo=UTC)) == date(2026, 12, 30)
    assert WorkingCalendar(zone=ZoneInfo("UTC")).local_date(datetime(2026, 12, 30, 16, 0, tzinfo=UTC)) == date(
        2026, 12, 30
    ), "the zone is a setting"


def test_a_year_nobody_knows_is_counted_monday_to_friday_and_named() -> None:
    calendar = WorkingCalendar()
    assert calendar.unknown_years(date(2026, 12, 4)) == [2027]
    assert calendar.working_days_after(beijing(2027, 3, 5, 9, 0), 1) == beijing(2027, 3, 8, 9, 0)
    assert calendar.guessed_years == {2027}


def test_the_override_file_gives_a_year_the_library_does_not_know() -> None:
    calendar = WorkingCalendar(
        overrides=arrangements({"2027": {"holidays": ["2027-10-01", "2027-10-04"], "workdays": ["2027-10-09"]}})
    )
    assert calendar.knows(2027) and calendar.unknown_years(date(2026, 12, 4)) == []
    assert not calendar.is_working_day(date(2027, 10, 4))  # a Monday off
    assert calendar.is_working_day(date(2027, 10, 9))  # a Saturday worked
    assert calendar.is_working_day(date(2027, 10, 5))
    assert calendar.guessed_years == set()
    assert YearArrangement().is_working_day(date(2027, 10, 8))


def test_an_override_listing_a_day_of_another_year_is_refused() -> None:
    with pytest.raises(ValueError, match="another year"):
        arrangements({"2027": {"holidays": ["2028-01-01"]}})


def test_an_unacknowledged_support_request_is_alerted_after_the_holiday_not_during_it() -> None:
    sent = beijing(2026, 9, 28, 10, 0)
    schedule = Schedule(Policy())
    for data in (
        c.TaskCreated(
            task_id="t", plan_id="p", title="Trade", field=CooperationField.TRADE, due=sent + timedelta(days=400)
        ),
        c.TaskAssigned(task_id="t", lead_department=Department.JILIN, supporting_departments=(Department.GACC,)),
        c.SupportRequested(
            request_id="sr",
            issue_id="i",
            task_id="t",
            departments=(Department.GACC,),
            need="rules",
            by=sent + timedelta(30),
        ),
    ):
        schedule.apply(new_event(data, actor="u-jilin", actordept=Department.JILIN, time=sent))
    assert schedule.due_alerts(beijing(2026, 10, 9, 23, 0)) == []
    assert [type(a) for a in schedule.due_alerts(beijing(2026, 10, 10, 10, 0))] == [c.SupportUnacknowledged]
