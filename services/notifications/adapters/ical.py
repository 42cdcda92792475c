"""A feed's entries as an iCalendar (RFC 5545) document, written with the ``icalendar``
library: each entry an event at its moment in Asia/Shanghai, with the zone's definition, its
summary in the feed's language and its stable UID."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from icalendar import Calendar, Event

from services.notifications.domain.calendar_feed import Entry
from shared.i18n import BEIJING, N_, _, names, parse, using

SUMMARIES = {
    "task_due": N_("Task due: %(title)s"),
    "milestone_due": N_("Milestone due: %(title)s"),
    "support_answer_by": N_("Support to answer by now (%(department)s): %(title)s"),
    "evaluation_due": N_("Evaluation due: %(title)s"),
}


def calendar_document(entries: Iterable[Entry], language: str, now: datetime) -> bytes:
    with using(parse(language) or "zh_CN"):
        calendar = Calendar()
        calendar.add("prodid", "-//policytrack//deadlines//EN")
        calendar.add("version", "2.0")
        calendar.add("calscale", "GREGORIAN")
        calendar.add("x-wr-calname", _("policytrack deadlines"))
        calendar.add("x-wr-timezone", "Asia/Shanghai")
        calendar.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
        for entry in entries:
            calendar.add_component(_event(entry, now))
        calendar.add_missing_timezones()
        document: bytes = calendar.to_ical()
        return document


def _event(entry: Entry, now: datetime) -> Event:
    event = Event()
    event.add("uid", entry.uid)
    event.add("dtstamp", now)
    event.add("dtstart", entry.due.astimezone(BEIJING))
    event.add("summary", _(SUMMARIES[entry.kind], title=entry.title, department=names.department(entry.detail)))
    if entry.task_id is not None:
        event.add("description", _("Task: %(task)s", task=entry.task_id))
    event.add("categories", [entry.kind])
    return event
