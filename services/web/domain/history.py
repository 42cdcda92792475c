"""A task's history as a person reads it: when, which department, who, and what happened,
one line per event of the trail; the sentence is written in the reader's language when shown."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.contract.catalog import short_type
from shared.i18n import format_date as day
from shared.i18n import gettext as _
from shared.i18n import names

Data = Mapping[str, Any]


@dataclass(frozen=True)
class HistoryLine:
    time: str
    subject: str
    version: int | None
    """The version of its subject the event made (none for an event that names none)."""
    department: str
    actor: str
    kind: str
    data: Data


def _title(data: Data) -> str:
    return str(data.get("title", ""))


def _departments(codes: Iterable[object] | None) -> str:
    return "、".join(names.department(code) for code in codes) if codes else _("nobody")


def _percent(data: Data) -> str:
    if data.get("note"):
        return _("reported progress of %(percent)s%%: %(note)s", percent=data.get("percent"), note=data["note"])
    return _("reported progress of %(percent)s%%", percent=data.get("percent"))


def _milestone_met(data: Data) -> str:
    if data.get("title"):
        return _("marked the milestone “%(title)s” met", title=data["title"])
    return _("marked a milestone met")


SENTENCES: dict[str, Callable[[Data], str]] = {
    "task.created": lambda d: _("created the task “%(title)s”, due %(due)s", title=_title(d), due=day(d.get("due"))),
    "task.assigned": lambda d: _(
        "assigned %(lead)s to lead, supported by %(supporting)s",
        lead=names.department(d.get("lead_department")),
        supporting=_departments(d.get("supporting_departments")),
    ),
    "task.reassigned": lambda d: _("reassigned the lead to %(lead)s", lead=names.department(d.get("lead_department"))),
    "task.deadline_changed": lambda d: _(
        "moved the deadline to %(due)s: %(reason)s", due=day(d.get("due")), reason=d.get("reason", "")
    ),
    "task.progress_reported": _percent,
    "task.health_changed": lambda d: _(
        "health became %(health)s: %(reason)s", health=names.state(d.get("health")), reason=d.get("reason", "")
    ),
    "task.completed": lambda d: _("completed the task"),
    "task.cancelled": lambda d: _("cancelled the task: %(reason)s", reason=d.get("reason", "")),
    "milestone.scheduled": lambda d: _(
        "scheduled the milestone “%(title)s”, due %(due)s", title=_title(d), due=day(d.get("due"))
    ),
    "milestone.met": _milestone_met,
    "issue.reported": lambda d: _(
        "reported a %(severity)s issue: “%(title)s”", severity=names.severity(d.get("severity")), title=_title(d)
    ),
    "issue.escalated": lambda d: _("escalated the issue to %(to)s", to=names.department(d.get("escalated_to") or "SC")),
    "issue.resolved": lambda d: _("resolved an issue: %(resolution)s", resolution=d.get("resolution", "")),
    "approval.requested": lambda d: _("asked approval of “%(title)s”", title=_title(d)),
    "approval.granted": lambda d: _("granted the approval"),
    "approval.rejected": lambda d: _("rejected the approval: %(reason)s", reason=d.get("reason", "")),
    "evaluation.recorded": lambda d: _("recorded an evaluation: %(rating)s", rating=names.rating(d.get("rating"))),
    "support_request.requested": lambda d: _(
        "asked %(departments)s for support", departments=_departments(d.get("departments"))
    ),
    "support_request.acknowledged": lambda d: _("acknowledged a support request"),
    "support_request.answered": lambda d: _("answered a support request: %(answer)s", answer=d.get("answer", "")),
    "support_request.declined": lambda d: _("declined a support request: %(reason)s", reason=d.get("reason", "")),
    "support_request.closed": lambda d: _("closed a support request"),
}


def describe(line: HistoryLine) -> str:
    """What happened, in the current language."""
    sentence = SENTENCES.get(line.kind)
    if sentence is None:
        return line.kind.replace("_", " ").replace(".", ": ")
    return sentence(line.data).strip().rstrip(":：").strip()


def _version(attribute: object) -> int | None:
    """An event's ``aggregateversion``, which the trail gives as its header held it (text)."""
    text = str(attribute) if attribute is not None else ""
    return int(text) if text.isdigit() else None


def history(entries: Iterable[Mapping[str, Any]]) -> list[HistoryLine]:
    """The trail's entries of one task, oldest first; undecodable entries are left out. A
    milestone met is named by the title it was scheduled with (its event carries only its id)."""
    lines = []
    titles: dict[str, str] = {}
    for entry in entries:
        event = entry.get("event")
        if not event:
            continue
        kind, data = short_type(event["type"]), event.get("data") or {}
        if kind == "milestone.scheduled":
            titles[str(data.get("milestone_id"))] = str(data.get("title", ""))
        elif kind == "milestone.met" and str(data.get("milestone_id")) in titles:
            data = {**data, "title": titles[str(data["milestone_id"])]}
        lines.append(
            HistoryLine(
                time=str(event.get("time", "")),
                subject=str(event.get("subject") or ""),
                version=_version(event.get("aggregateversion")),
                department=str(event.get("actordept") or ""),
                actor=str(event.get("actor") or ""),
                kind=kind,
                data=data,
            )
        )
    return lines
