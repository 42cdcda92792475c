"""A task's history as a person reads it: when, which department, who, and what happened,
one line per event of the trail."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.contract.catalog import short_type

Data = Mapping[str, Any]


@dataclass(frozen=True)
class HistoryLine:
    time: str
    department: str
    actor: str
    kind: str
    what: str


def _day(value: object) -> str:
    """A due date as people write it: the day."""
    return str(value or "")[:10]


def _percent(data: Data) -> str:
    note = f": {data['note']}" if data.get("note") else ""
    return f"reported progress of {data.get('percent')}%{note}"


SENTENCES: dict[str, Callable[[Data], str]] = {
    "task.created": lambda d: f"created the task “{d.get('title', '')}”, due {_day(d.get('due'))}",
    "task.assigned": lambda d: (
        f"assigned {d.get('lead_department')} to lead, supported by "
        + (", ".join(d.get("supporting_departments") or ()) or "nobody")
    ),
    "task.reassigned": lambda d: f"reassigned the lead to {d.get('lead_department')}",
    "task.deadline_changed": lambda d: f"moved the deadline to {_day(d.get('due'))}: {d.get('reason', '')}",
    "task.progress_reported": _percent,
    "task.health_changed": lambda d: (
        f"health became {str(d.get('health', '')).replace('_', ' ')}: " + str(d.get("reason", ""))
    ),
    "task.completed": lambda d: "completed the task",
    "task.cancelled": lambda d: f"cancelled the task: {d.get('reason', '')}",
    "milestone.scheduled": lambda d: f"scheduled the milestone “{d.get('title', '')}”, due {_day(d.get('due'))}",
    "milestone.met": lambda d: "marked a milestone met",
    "issue.reported": lambda d: f"reported a {d.get('severity', '')} issue: “{d.get('title', '')}”",
    "issue.escalated": lambda d: f"escalated an issue to {d.get('escalated_to', 'SC')}",
    "issue.resolved": lambda d: f"resolved an issue: {d.get('resolution', '')}",
    "approval.requested": lambda d: f"asked approval of “{d.get('title', '')}”",
    "approval.granted": lambda d: "granted the approval",
    "approval.rejected": lambda d: f"rejected the approval: {d.get('reason', '')}",
    "evaluation.recorded": lambda d: f"recorded an evaluation: {d.get('rating', '')}",
    "support_request.requested": lambda d: "asked " + ", ".join(d.get("departments") or ()) + " for support",
    "support_request.acknowledged": lambda d: "acknowledged a support request",
    "support_request.answered": lambda d: f"answered a support request: {d.get('answer', '')}",
    "support_request.declined": lambda d: f"declined a support request: {d.get('reason', '')}",
    "support_request.closed": lambda d: "closed a support request",
}


def describe(kind: str, data: Data) -> str:
    sentence = SENTENCES.get(kind)
    return sentence(data).strip().rstrip(":") if sentence else kind.replace("_", " ").replace(".", ": ")


def history(entries: Iterable[Mapping[str, Any]]) -> list[HistoryLine]:
    """The trail's entries of one task, oldest first; undecodable entries are left out."""
    lines = []
    for entry in entries:
        event = entry.get("event")
        if not event:
            continue
        kind = short_type(event["type"])
        lines.append(
            HistoryLine(
                time=str(event.get("time", "")),
                department=str(event.get("actordept") or ""),
                actor=str(event.get("actor") or ""),
                kind=kind,
                what=describe(kind, event.get("data") or {}),
            )
        )
    return lines
