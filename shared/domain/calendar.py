"""Working days as the State Council arranges them (public holidays and the make-up working days,
调休), in the deployment's time zone: from the chinese-calendar library, with an override for
years it does not know yet. Pure: the overrides are data handed in."""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

BEIJING = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class YearArrangement:
    """One year's arrangement, as the State Council publishes it: the days off that fall on a
    weekday and the weekend days that are worked."""

    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()

    def is_working_day(self, day: date) -> bool:
        return day in self.workdays or (day.weekday() < 5 and day not in self.holidays)


@dataclass
class WorkingCalendar:
    zone: ZoneInfo = BEIJING
    overrides: Mapping[int, YearArrangement] = field(default_factory=dict)
    guessed_years: set[int] = field(default_factory=set)
    """Years neither the library nor the overrides know, met so far: counted Monday to Friday,
    and shown as a warning (``unknown_years``) until their arrangement is added."""

    def knows(self, year: int) -> bool:
        if year in self.overrides:
            return True
        try:
            chinese_calendar.is_workday(date(year, 6, 1))
        except NotImplementedError:
            return False
        return True

    def is_working_day(self, day: date) -> bool:
        if (arrangement := self.overrides.get(day.year)) is not None:
            return arrangement.is_working_day(day)
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            self.guessed_years.add(day.year)
            return day.weekday() < 5

    def working_days_after(self, moment: datetime, days: int) -> datetime:
        """The same time of day ``days`` working days after ``moment``, counted on the calendar
        of the deployment's zone (a Monday morning in Beijing is Sunday night in UTC)."""
        local = moment.astimezone(self.zone)
        day, left = local.date(), days
        while left:
            day += timedelta(days=1)
            left -= self.is_working_day(day)
        return datetime.combine(day, local.timetz()).astimezone(moment.tzinfo)

    def local_date(self, moment: datetime) -> date:
        """The calendar date of ``moment`` where the deployment is (a due date as people read it)."""
        return moment.astimezone(self.zone).date()

    def unknown_years(self, around: date) -> list[int]:
        """This year and the next, when the calendar cannot tell their working days."""
        return [year for year in (around.year, around.year + 1) if not self.knows(year)]


def arrangements(document: Mapping[str, Mapping[str, list[str]]]) -> dict[int, YearArrangement]:
    """The override file's years: ``{"2027": {"holidays": [...], "workdays": [...]}}``, dates as
    ISO strings. A date filed under another year is refused."""
    years: dict[int, YearArrangement] = {}
    for year, days in document.items():
        holidays = frozenset(map(date.fromisoformat, days.get("holidays", [])))
        workdays = frozenset(map(date.fromisoformat, days.get("workdays", [])))
        stray = sorted(day for day in holidays | workdays if day.year != int(year))
        if stray:
            raise ValueError(f"the arrangement for {year} lists {stray[0]}, a day of another year")
        years[int(year)] = YearArrangement(holidays, workdays)
    return years


def months_after(moment: datetime, months: int) -> datetime:
    """The same day ``months`` later (the month's last day when it is shorter)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, monthrange(year, month)[1]))
