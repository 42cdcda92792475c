"""The forms people act with, one per command of the tasks API: their fields, and how a posted
form becomes the command's JSON body. Which forms a person sees is the tasks service's answer
(``/v1/tasks/{id}/actions``); the dashboard only lays them out. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo
from typing import Any, Literal

from shared.contract.codes import ApprovalKind, CooperationField, Department, Rating, Severity
from shared.i18n import N_

Kind = Literal[
    "text",
    "textarea",
    "percent",
    "months",
    "date",
    "department",
    "departments",
    "severity",
    "rating",
    "approval_kind",
    "field",
    "decision",
    "files",
]

COMMAND_PATH = re.compile(r"/v1/(plans|tasks|issues|approvals|support-requests)(/[A-Za-z0-9._:-]{1,128}){0,4}")
"""The shape of a tasks API command route: a form names no other address."""


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: Kind = "text"
    required: bool = False


@dataclass(frozen=True)
class Form:
    title: str
    fields: tuple[Field, ...] = ()
    button: str = N_("Submit")

    @property
    def takes_files(self) -> bool:
        return any(field.kind == "files" for field in self.fields)


NOTE = Field("note", N_("Note"), "textarea")
EVIDENCE = Field("evidence", N_("Evidence (PDF, images, office documents)"), "files")
"""Files the act rests on: uploaded first, then named in the command with their hashes."""
REASON = Field("reason", N_("Reason"), "textarea", required=True)

FORMS: Mapping[str, Form] = {
    "report_progress": Form(
        N_("Report progress"),
        (Field("percent", N_("Progress (per cent)"), "percent", True), NOTE, EVIDENCE),
        N_("Report"),
    ),
    "schedule_milestone": Form(
        N_("Schedule a milestone"),
        (Field("title", N_("Milestone"), required=True), Field("due", N_("Due date"), "date", True)),
        N_("Schedule"),
    ),
    "mark_milestone_met": Form(N_("Mark the milestone met"), (EVIDENCE,), N_("Mark met")),
    "complete_task": Form(N_("Complete the task"), (NOTE,), N_("Complete")),
    "change_deadline": Form(
        N_("Change the deadline"), (Field("due", N_("New due date"), "date", True), REASON), N_("Change")
    ),
    "report_issue": Form(
        N_("Report an issue"),
        (
            Field("title", N_("Issue"), required=True),
            Field("severity", N_("Severity"), "severity", True),
            Field("detail", N_("Detail"), "textarea"),
            EVIDENCE,
        ),
        N_("Report"),
    ),
    "escalate_issue": Form(N_("Escalate the issue"), (Field("reason", N_("Reason"), "textarea"),), N_("Escalate")),
    "resolve_issue": Form(N_("Resolve the issue"), (Field("resolution", N_("Resolution"), "textarea"),), N_("Resolve")),
    "request_support": Form(
        N_("Ask for support"),
        (
            Field("departments", N_("Departments asked"), "departments", True),
            Field("need", N_("What is needed"), "textarea", True),
            Field("by", N_("Answer by"), "date", True),
        ),
        N_("Ask"),
    ),
    "acknowledge_support": Form(N_("Acknowledge the support request"), (), N_("Acknowledge")),
    "answer_support": Form(
        N_("Answer the support request"), (Field("answer", N_("Answer"), "textarea", True), EVIDENCE), N_("Answer")
    ),
    "decline_support": Form(N_("Decline the support request"), (REASON,), N_("Decline")),
    "close_support": Form(N_("Close the support request"), (NOTE,), N_("Close")),
    "request_approval": Form(
        N_("Ask for approval"),
        (
            Field("kind", N_("Kind"), "approval_kind", True),
            Field("title", N_("What is to be approved"), required=True),
            Field("detail", N_("Detail"), "textarea"),
        ),
        N_("Ask"),
    ),
    "decide_approval": Form(
        N_("Decide the approval"),
        (Field("granted", N_("Decision"), "decision", True), Field("reason", N_("Reason"), "textarea")),
        N_("Decide"),
    ),
    "record_evaluation": Form(
        N_("Record an evaluation"),
        (Field("rating", N_("Rating"), "rating", True), Field("findings", N_("Findings"), "textarea"), EVIDENCE),
        N_("Record"),
    ),
    "record_plan_evaluation": Form(
        N_("Evaluate the plan"),
        (Field("rating", N_("Rating"), "rating", True), Field("findings", N_("Findings"), "textarea"), EVIDENCE),
        N_("Record"),
    ),
    "approve_plan": Form(
        N_("Approve a plan"),
        (
            Field("title", N_("Plan"), required=True),
            Field("summary", N_("Summary"), "textarea"),
            Field("evaluation_interval_months", N_("Evaluate every (months)"), "months"),
            Field("document_number", N_("Document number (e.g. 国函〔2020〕111号)")),
        ),
        N_("Approve"),
    ),
    "create_task": Form(
        N_("Assign a task"),
        (
            Field("title", N_("Task"), required=True),
            Field("field", N_("Field of cooperation"), "field", True),
            Field("lead_department", N_("Lead department"), "department", True),
            Field("supporting_departments", N_("Supporting departments"), "departments"),
            Field("due", N_("Due date"), "date", True),
        ),
        N_("Assign"),
    ),
}

DUTIES: Mapping[str, str] = {
    "acknowledge_support": N_("Acknowledge a support request"),
    "answer_support": N_("Answer a support request"),
    "decide_approval": N_("Decide an approval"),
    "milestone_due": N_("Milestone due"),
    "report_progress": N_("Progress report due"),
    "evaluation_due": N_("Plan evaluation due"),
}
"""The to-do list's kinds of duty, as the tasks service names them (``/v1/todo``)."""

CHOICES: Mapping[str, tuple[str, ...]] = {
    "severity": tuple(Severity),
    "rating": tuple(Rating),
    "approval_kind": tuple(ApprovalKind),
    "field": tuple(CooperationField),
    "department": tuple(Department),
    "departments": tuple(Department),
    "decision": ("granted", "rejected"),
}


class FormProblem(ValueError):
    """A field the dashboard can tell is wrong before asking the service."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def end_of_day(day: date, zone: tzinfo) -> datetime:
    """A due date as a moment: the end of that day where the deployment is, so the date shown
    back is the date entered."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=zone)


def body_of(form: Form, posted: Mapping[str, Sequence[str]], zone: tzinfo) -> dict[str, Any]:
    """The command's JSON body from a posted form; a field that cannot be read raises
    ``FormProblem`` naming it (the rules' own checks are the service's)."""
    body: dict[str, Any] = {}
    for field in form.fields:
        if field.kind == "files":
            continue  # uploaded on their own before the command is sent
        values = [v.strip() for v in posted.get(field.name, ()) if v.strip()]
        if not values:
            if field.required:
                raise FormProblem(field.name, N_("This field is required."))
            continue
        body[field.name] = _value(field, values, zone)
    return body


def _value(field: Field, values: list[str], zone: tzinfo) -> Any:
    if field.kind == "departments":
        return [value for value in values if value in CHOICES["departments"]]
    value = values[0]
    if field.kind in ("percent", "months"):
        if not value.isdigit():
            raise FormProblem(field.name, N_("A whole number, please."))
        return int(value)
    if field.kind == "date":
        try:
            return end_of_day(date.fromisoformat(value), zone).isoformat()
        except ValueError:
            raise FormProblem(field.name, N_("A date, please (2026-12-31).")) from None
    if field.kind == "decision":
        return value == "granted"
    if field.kind in CHOICES and value not in CHOICES[field.kind]:
        raise FormProblem(field.name, N_("Pick one of the choices."))
    return value
