"""The dashboard's pages: overview, the department's to-do list, the plan, responsibility, a task
(as of any moment, with the forms to act on it), alerts, the trail and the printable report. Each
reads the services with the signed-in user's token."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from services.web.adapters.backends import BackendDown, BackendRefused
from services.web.adapters.sessions import Session
from services.web.application.reading import holds_version, overview_for, task_trail_through, trail_entries
from services.web.bootstrap import WebRuntime
from services.web.domain import responsibility as heat
from services.web.domain.forms import CHOICES, DUTIES, FORMS
from services.web.domain.history import HistoryLine, history
from services.web.domain.task_sheet import SheetReport
from services.web.entrypoints.acts import Filled, act, fresh_key
from services.web.entrypoints.charts import field_progress_chart, milestone_timeline
from services.web.entrypoints.rendering import may_verify, page
from services.web.entrypoints.session import Runtime, SignedIn, checked, same_origin
from shared.contract.catalog import CATALOG, DailyDigest, short_type
from shared.contract.codes import CooperationField, Department, Role
from shared.contract.types import AGGREGATE_ID_PATTERN
from shared.domain.progress import FieldProgress
from shared.domain.state import Task
from shared.i18n import gettext as _
from shared.i18n import names

router = APIRouter(include_in_schema=False)
TaskId = Annotated[str, Path(pattern=AGGREGATE_ID_PATTERN, max_length=128)]
ALERT_TYPES = sorted(
    short_type(t) for t in CATALOG if short_type(t).startswith("alert.") and t != DailyDigest.event_type
)
"""What the alerts page lists: not the daily digest, which is a mail's summary of the rest."""


async def shown(
    request: Request, web: WebRuntime, template: str, session: Session, status: int = 200, **context: Any
) -> Response:
    """A page with the count of the department's to-do list in its navigation."""
    try:
        todo = await web.backends.get("tasks", "/v1/todo", session.token)
        count = len(todo["items"])
    except (BackendRefused, BackendDown):
        count = 0
    return page(request, template, session, status=status, todo_count=count, **context)


def moment(text: str | None) -> datetime | None:
    """A moment from a form or a link; one without an offset is taken as UTC. None if unreadable."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@router.get("/")
async def overview_page(request: Request, web: Runtime, session: SignedIn) -> Response:
    tasks, summary = await overview_for(web.backends, session.token, web.clock())
    return await shown(
        request,
        web,
        "overview.html.j2",
        session,
        summary=summary,
        chart=lambda: field_progress_chart(summary.fields),
        tasks=sorted(tasks, key=lambda t: (t.field, t.title)),
    )


@router.get("/responsibility")
async def responsibility_page(
    request: Request, web: Runtime, session: SignedIn, sort: str = "department", desc: bool = False, as_of: str = ""
) -> Response:
    at = moment(as_of)
    report = await web.backends.get(
        "audit", "/v1/audit/responsibility", session.token, {"as_of": at.isoformat()} if at else {}
    )
    return await shown(
        request,
        web,
        "responsibility.html.j2",
        session,
        table=heat.table(report["departments"], sort=sort, descending=desc),
        as_of=report["as_of"],
        asked_as_of=as_of,
    )


@router.get("/tasks/{task_id}")
async def task_page(
    request: Request, web: Runtime, session: SignedIn, task_id: TaskId, as_of: str = "", done: str = ""
) -> Response:
    return await _task_page(request, web, session, task_id, as_of=as_of, done=done)


@router.post("/tasks/{task_id}/act")
async def act_on_task(request: Request, web: Runtime, session: SignedIn, task_id: TaskId) -> Response:
    outcome = await act(request, web, session)
    if isinstance(outcome, Response):
        return outcome
    return await _task_page(request, web, session, task_id, filled=outcome, status=_status_of(outcome))


def _status_of(filled: Filled) -> int:
    return 409 if filled.stale else 422 if filled.errors else 400


def unseen_by(filled: Filled | None, lines: list[HistoryLine]) -> set[tuple[str, int]]:
    """The changes a form refused as stale did not see: the versions after the one it was filled
    against, of the subject it acts on (named in its path). By version, not time, since a change
    may be decided before the page is drawn and applied after the page read the task."""
    if filled is None or filled.filled_against is None:  # spelled out for the type checker
        return set()
    segments, against = set(filled.path.split("/")), filled.filled_against
    return {
        (line.subject, line.version)
        for line in lines
        if line.subject in segments and line.version is not None and line.version > against
    }


async def _task_page(
    request: Request,
    web: WebRuntime,
    session: Session,
    task_id: str,
    *,
    as_of: str = "",
    done: str = "",
    filled: Filled | None = None,
    status: int = 200,
) -> Response:
    at = moment(as_of)
    current, entries, actions = await asyncio.gather(
        web.backends.get("tasks", f"/v1/tasks/{task_id}", session.token),
        trail_entries(web.backends, session.token, task_id=task_id),
        web.backends.get("tasks", f"/v1/tasks/{task_id}/actions", session.token),
    )
    state = current
    if at is not None:
        state = await web.backends.get(
            "audit", f"/v1/audit/tasks/{task_id}/state", session.token, {"as_of": at.isoformat()}
        )
    task = Task.model_validate(state)
    if filled is not None and filled.stale and not holds_version(entries, task_id, current["version"]):
        # The form was refused for a change the service knows of; the trail learns of it a moment later.
        entries = await task_trail_through(web.backends, session.token, task_id, current["version"])
    lines = history(entries)
    return await shown(
        request,
        web,
        "task.html.j2",
        session,
        status=status,
        task=task,
        timeline=lambda: milestone_timeline(task, at or web.clock(), marker=_("as of") if at else _("now")),
        history=lines,
        moments=sorted({line.time for line in lines}, reverse=True),
        unseen=unseen_by(filled, lines),
        as_of=as_of if at else "",
        **forms_of([] if at else actions["items"], f"/tasks/{task_id}", done, filled),
    )


@router.get("/todo")
async def todo_page(request: Request, web: Runtime, session: SignedIn) -> Response:
    todo = await web.backends.get("tasks", "/v1/todo", session.token)
    return await shown(request, web, "todo.html.j2", session, duties=todo["items"], duty_names=DUTIES)


@router.get("/plan")
async def plan_page(request: Request, web: Runtime, session: SignedIn, done: str = "") -> Response:
    return await plan_page_of(request, web, session, done=done)


@router.post("/plan/act")
async def act_on_plan(request: Request, web: Runtime, session: SignedIn) -> Response:
    outcome = await act(request, web, session)
    if isinstance(outcome, Response):
        return outcome
    return await plan_page_of(request, web, session, filled=outcome, status=_status_of(outcome))


async def plan_page_of(
    request: Request,
    web: WebRuntime,
    session: Session,
    *,
    done: str = "",
    filled: Filled | None = None,
    status: int = 200,
    sheet: SheetReport | None = None,
) -> Response:
    """The plan page: its forms, and what came of a sheet of tasks sent to it."""
    actions = await web.backends.get("tasks", "/v1/actions", session.token)
    return await shown(
        request,
        web,
        "plan.html.j2",
        session,
        status=status,
        sheet=sheet,
        **forms_of(actions["items"], "/plan", done, filled),
    )


def forms_of(actions: list[dict[str, Any]], page_path: str, done: str, filled: Filled | None) -> dict[str, Any]:
    """What a page with forms needs: the actions offered, how to lay each out, what was sent
    before, and where the forms post (``<page>/act``) and come back to."""
    return {
        "actions": actions,
        "forms": FORMS,
        "choices": CHOICES,
        "filled": filled,
        "fresh_key": fresh_key,
        "done": done if done in FORMS else "",
        "act_url": f"{page_path}/act",
        "back": page_path,
    }


@router.get("/alerts")
async def alerts_page(request: Request, web: Runtime, session: SignedIn) -> Response:
    return await shown(request, web, "alerts.html.j2", session, alert_types=ALERT_TYPES, alert_names=alert_names)


def alert_names() -> dict[str, str]:
    """The alerts' names in the reader's language, for the live list the page's script fills."""
    return {kind: names.alert(kind) for kind in ALERT_TYPES}


@router.get("/trail")
async def trail_page(request: Request, web: Runtime, session: SignedIn) -> Response:
    checkpoints, verifications = await asyncio.gather(
        web.backends.get("audit", "/v1/audit/checkpoints", session.token),
        web.backends.get("audit", "/v1/audit/verifications", session.token, {"limit": 5}),
    )
    signed = checkpoints["checkpoints"]
    return await shown(
        request,
        web,
        "trail.html.j2",
        session,
        last_checkpoint=signed[-1] if signed else None,
        checkpoints=len(signed),
        key_id=checkpoints["key_id"],
        verifications=verifications["items"],
    )


@router.post("/trail/verify")
async def verify_now(
    request: Request, web: Runtime, session: SignedIn, csrf: Annotated[str, Form(max_length=200)]
) -> Response:
    same_origin(request)
    checked(session, csrf)
    if not may_verify(session):
        return page(request, "refused.html.j2", session, status=403, detail="verifying the trail is for auditors")
    await web.backends.get("audit", "/v1/audit/verify", session.token)
    return RedirectResponse("/trail", status_code=303)


@router.get("/report")
async def report_page(
    request: Request,
    web: Runtime,
    session: SignedIn,
    period_from: Annotated[str, Query(alias="from")] = "",
    period_to: Annotated[str, Query(alias="to")] = "",
    submitted: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    start, end = moment(period_from), moment(period_to)
    period = {k: v.isoformat() for k, v in {"from": start, "to": end}.items() if v is not None}
    report = await web.backends.get("audit", "/v1/audit/reports/implementation", session.token, period)
    fields = [
        FieldProgress(field=field, **report["fields"][field]) for field in CooperationField if field in report["fields"]
    ]
    return await shown(
        request,
        web,
        "report.html.j2",
        session,
        report=report,
        chart=lambda: field_progress_chart(fields),
        table=heat.table(report["departments"], sort="late", descending=True),
        period_from=report["period"]["from"],
        period_to=report["period"]["to"],
        may_submit=may_submit(session),
        submitted=submitted,
    )


def may_submit(session: Session) -> bool:
    """Submitting the report to the State Council is the NDRC supervisor's."""
    return session.actor.department == Department.NDRC and session.actor.has(Role.SUPERVISOR)


@router.post("/report/submit")
async def submit_report(
    request: Request,
    web: Runtime,
    session: SignedIn,
    csrf: Annotated[str, Form(max_length=200)],
    period_from: Annotated[str, Form(alias="from", max_length=64)],
    period_to: Annotated[str, Form(alias="to", max_length=64)],
) -> Response:
    """The report as shown, sent: the audit service records who submitted which period and the
    SHA-256 of what it holds; the page shows that digest."""
    same_origin(request)
    checked(session, csrf)
    period = {"from": period_from, "to": period_to}
    answer = await web.backends.post("audit", "/v1/audit/reports/implementation/submit", session.token, period)
    query = urlencode({**period, "submitted": answer["sha256"]})
    return RedirectResponse(f"/report?{query}", status_code=303)
