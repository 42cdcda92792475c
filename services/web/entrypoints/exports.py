"""The dashboard's tables to take away: the responsibility table, the department's to-do list
and the task list as Excel workbooks, with the words and times the pages show."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from services.web.application.reading import visible_tasks
from services.web.domain import responsibility as heat
from services.web.domain.forms import DUTIES
from services.web.entrypoints.rendering import locale_of, zone_of
from services.web.entrypoints.session import Runtime, SignedIn
from services.web.entrypoints.spreadsheets import Sheet, download, moment
from shared import i18n
from shared.domain.state import Task
from shared.i18n import gettext as _
from shared.i18n import names

router = APIRouter(include_in_schema=False)


@router.get("/responsibility.xlsx")
async def responsibility_workbook(request: Request, web: Runtime, session: SignedIn, as_of: str = "") -> Response:
    at = moment(as_of) if as_of else None
    report = await web.backends.get(
        "audit", "/v1/audit/responsibility", session.token, {"as_of": at.isoformat()} if at else {}
    )
    table = heat.table(report["departments"])
    with i18n.using(locale_of(request), zone_of(request)):
        sheet = Sheet(
            _("Responsibility"),
            [_("Department"), *(names.column(column) for column in table.columns), _("As of")],
            [
                [names.department(row.department), *(cell.value for cell in row.cells), moment(report["as_of"])]
                for row in table.rows
            ],
        )
        return download("policytrack-responsibility", sheet)


@router.get("/todo.xlsx")
async def todo_workbook(request: Request, web: Runtime, session: SignedIn) -> Response:
    todo = await web.backends.get("tasks", "/v1/todo", session.token)
    with i18n.using(locale_of(request), zone_of(request)):
        sheet = Sheet(
            _("To do"),
            [_("What"), _("About"), _("Due"), _("Late"), _("Task")],
            [_duty_row(duty) for duty in todo["items"]],
        )
        return download("policytrack-todo", sheet)


@router.get("/tasks.xlsx")
async def tasks_workbook(request: Request, web: Runtime, session: SignedIn) -> Response:
    tasks = await visible_tasks(web.backends, session.token)
    now = web.clock()
    with i18n.using(locale_of(request), zone_of(request)):
        sheet = Sheet(
            _("Tasks"),
            [
                _("Task"),
                _("Title"),
                _("Field"),
                _("Lead department"),
                _("Supporting departments"),
                _("Due"),
                _("Status"),
                _("Health"),
                _("Late"),
                _("Progress (%)"),
            ],
            [_task_row(task, now) for task in sorted(tasks, key=lambda t: (t.field, t.title))],
        )
        return download("policytrack-tasks", sheet)


def _duty_row(duty: dict[str, Any]) -> list[Any]:
    what = DUTIES[duty["kind"]]  # marked for translation where it is defined
    return [
        _(what),
        duty["title"],
        moment(duty["due"]),
        _yes(duty["overdue"]),
        duty.get("task_id") or "",
    ]


def _task_row(task: Task, now: datetime) -> list[Any]:
    return [
        task.task_id,
        task.title,
        names.field(task.field),
        names.department(task.lead_department) if task.lead_department else "",
        "、".join(names.department(d) for d in task.supporting_departments),
        task.due,
        names.state(task.status),
        names.state(task.health),
        _yes(task.is_overdue(now)),
        task.percent,
    ]


def _yes(value: bool) -> str:
    # Lateness is told in words, never by colour alone.
    return _("yes") if value else _("no")
