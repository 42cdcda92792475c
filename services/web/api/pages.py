"""The dashboard's pages: overview, responsibility, a task (as of any moment), alerts, the
trail and the printable report. Each reads the services with the signed-in user's token."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from services.web.api.charts import field_progress_chart, milestone_timeline
from services.web.api.rendering import may_verify, page
from services.web.api.session import Runtime, SignedIn, checked, same_origin
from services.web.bootstrap import WebRuntime
from services.web.domain import responsibility as heat
from services.web.domain.history import history
from services.web.domain.overview import ISSUE_AND_APPROVAL_TYPES, overview
from shared.contract.catalog import CATALOG, short_type
from shared.contract.codes import CooperationField
from shared.contract.types import AGGREGATE_ID_PATTERN
from shared.domain.progress import FieldProgress
from shared.domain.state import Task

router = APIRouter(include_in_schema=False)
TaskId = Annotated[str, Path(pattern=AGGREGATE_ID_PATTERN, max_length=128)]
ALERT_TYPES = sorted(short_type(t) for t in CATALOG if short_type(t).startswith("alert."))


def moment(text: str | None) -> datetime | None:
    """A moment from a form or a link; one without an offset is taken as UTC. None if unreadable."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def _tasks(web: WebRuntime, token: str) -> list[Task]:
    items = await web.backends.every("tasks", "/v1/tasks", token, {}, limit=500)
    return [Task.model_validate(item) for item in items]


async def _entries(web: WebRuntime, token: str, **filters: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = await web.backends.every("audit", "/v1/audit/events", token, filters, limit=1000)
    return entries


@router.get("/")
async def overview_page(request: Request, web: Runtime, session: SignedIn) -> Response:
    tasks, *by_type = await asyncio.gather(
        _tasks(web, session.token), *(_entries(web, session.token, type=t) for t in ISSUE_AND_APPROVAL_TYPES)
    )
    entries = sorted((e for found in by_type for e in found), key=lambda e: e["seq"])
    now = datetime.now(UTC)
    summary = overview(tasks, entries, now)
    return page(
        request,
        "overview.html.j2",
        session,
        summary=summary,
        chart=field_progress_chart(summary.fields),
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
    return page(
        request,
        "responsibility.html.j2",
        session,
        table=heat.table(report["departments"], sort=sort, descending=desc),
        as_of=report["as_of"],
        asked_as_of=as_of,
    )


@router.get("/tasks/{task_id}")
async def task_page(request: Request, web: Runtime, session: SignedIn, task_id: TaskId, as_of: str = "") -> Response:
    at = moment(as_of)
    current, entries = await asyncio.gather(
        web.backends.get("tasks", f"/v1/tasks/{task_id}", session.token),
        _entries(web, session.token, task_id=task_id),
    )
    state = current
    if at is not None:
        state = await web.backends.get(
            "audit", f"/v1/audit/tasks/{task_id}/state", session.token, {"as_of": at.isoformat()}
        )
    task = Task.model_validate(state)
    lines = history(entries)
    return page(
        request,
        "task.html.j2",
        session,
        task=task,
        timeline=milestone_timeline(task, at or datetime.now(UTC), marker="as of" if at else "now"),
        history=lines,
        moments=sorted({line.time for line in lines}, reverse=True),
        as_of=as_of if at else "",
    )


@router.get("/alerts")
async def alerts_page(request: Request, session: SignedIn) -> Response:
    return page(request, "alerts.html.j2", session, alert_types=ALERT_TYPES)


@router.get("/trail")
async def trail_page(request: Request, web: Runtime, session: SignedIn) -> Response:
    checkpoints, verifications = await asyncio.gather(
        web.backends.get("audit", "/v1/audit/checkpoints", session.token),
        web.backends.get("audit", "/v1/audit/verifications", session.token, {"limit": 5}),
    )
    signed = checkpoints["checkpoints"]
    return page(
        request,
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
) -> Response:
    start, end = moment(period_from), moment(period_to)
    period = {k: v.isoformat() for k, v in {"from": start, "to": end}.items() if v is not None}
    report = await web.backends.get("audit", "/v1/audit/reports/implementation", session.token, period)
    fields = [
        FieldProgress(field=field, **report["fields"][field]) for field in CooperationField if field in report["fields"]
    ]
    return page(
        request,
        "report.html.j2",
        session,
        report=report,
        chart=field_progress_chart(fields),
        table=heat.table(report["departments"], sort="late", descending=True),
        period_from=report["period"]["from"],
        period_to=report["period"]["to"],
    )
