"""What the trail says: a task as of any moment, and who was responsible for what."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.audit.adapters import documents
from services.audit.application import reports
from services.audit.entrypoints.dependencies import Moment, Runtime, Store, TaskIdPath, everything
from shared.auth import Actor, can_read
from shared.contract.codes import Department, Role
from shared.contract.types import UtcDatetime
from shared.domain.state import Task
from shared.http.idempotency import idempotency_key
from shared.http.problems import Problem, problem_responses
from shared.http.service import Authenticated

router = APIRouter(tags=["audit"])


class Responsibility(BaseModel):
    as_of: str
    departments: dict[str, dict[str, int]]


@router.get(
    "/v1/audit/tasks/{task_id}/state",
    response_model=Task,
    responses=problem_responses(401, 404, 422),
    summary="A task's state as of a moment, replayed with the tasks service's own evolve",
)
async def task_state(task_id: TaskIdPath, actor: Authenticated, store: Store, as_of: Moment = None) -> JSONResponse:
    task = await reports.replay_task(store, task_id, as_of)
    if task is None or not can_read(actor, (task.lead_department, *task.supporting_departments)):
        raise Problem(404, f"no task {task_id} that you may see" + (f" as of {as_of.isoformat()}" if as_of else ""))
    return JSONResponse(task.model_dump(mode="json"), headers={"ETag": f'"{task.version}"'})


@router.get(
    "/v1/audit/responsibility",
    response_model=Responsibility,
    responses=problem_responses(401, 403, 422, 429),
    summary="Per department, as of a moment: assigned, acts, done, late, at risk, escalated, support answered",
)
async def responsibility(actor: Authenticated, runtime: Runtime, as_of: Moment = None) -> dict[str, Any]:
    everything(actor)
    moment = _not_after(runtime.clock(), as_of)
    return {"as_of": moment.isoformat(), "departments": await runtime.reports.responsibility(actor.user, moment)}


READERS_OF_REPORTS = frozenset({Department.NDRC, Department.SC})


class Period(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    period_from: UtcDatetime = Field(alias="from")
    period_to: UtcDatetime = Field(alias="to")


class Submitted(BaseModel):
    id: str
    sha256: str
    period: dict[str, str]


def _may_read_reports(actor: Actor) -> None:
    if actor.department not in READERS_OF_REPORTS and not actor.has(Role.AUDITOR):
        raise Problem(403, "the implementation report is for the NDRC, the State Council and auditors")


def _not_after(now: datetime, moment: datetime | None) -> datetime:
    """The moment asked for, but no later than now: what has not happened is not reported."""
    return now if moment is None else min(moment, now)


def _period(now: datetime, period_from: datetime | None, period_to: datetime | None) -> tuple[datetime, datetime]:
    """The period asked for, ending no later than now; half a year when no start is given."""
    end = _not_after(now, period_to)
    start = period_from or end - timedelta(days=182)
    if start > end:
        raise Problem(422, "the period's start is after its end", field="from")
    return start, end


@router.get(
    "/v1/audit/reports/implementation",
    responses={
        200: {
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/markdown": {"schema": {"type": "string"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            },
            "description": "the report, as JSON, or as a document with the same numbers (Markdown, or PDF in Chinese)",
        },
        **problem_responses(401, 403, 422, 429, 503),
    },
    summary="The NDRC's report on a period to the State Council, from the trail alone",
)
async def implementation_report(
    actor: Authenticated,
    runtime: Runtime,
    period_from: Annotated[Moment, Query(alias="from")] = None,
    period_to: Annotated[Moment, Query(alias="to")] = None,
    format: Literal["json", "md", "pdf"] = "json",
) -> Response:
    _may_read_reports(actor)
    start, end = _period(runtime.clock(), period_from, period_to)
    report = await runtime.reports.implementation(actor.user, start, end)
    if format == "md":
        return Response(reports.markdown(report), media_type="text/markdown; charset=utf-8")
    if format == "pdf":
        return await _as_pdf(report, start, end)
    return Response(
        reports.canonical_report(report),
        media_type="application/json",
        headers={"Digest": f"sha-256={reports.digest(report)}"},
    )


@router.post(
    "/v1/audit/reports/implementation/submit",
    status_code=201,
    response_model=Submitted,
    responses=problem_responses(401, 403, 413, 422, 503),
    summary="The NDRC submits the report on a period: the trail records who sent it and its SHA-256",
    description="Under an `Idempotency-Key`, a retried submission is answered with the first one "
    "(the same id and digest, `Idempotent-Replayed: true`), not recorded again.",
)
async def submit_report(
    actor: Authenticated, runtime: Runtime, period: Period, request: Request, response: Response
) -> dict[str, Any]:
    if actor.department != Department.NDRC or not actor.has(Role.SUPERVISOR):
        raise Problem(403, "only the supervisor (NDRC) submits the implementation report")
    keyed = await idempotency_key(request)
    start, end = _period(runtime.clock(), period.period_from, period.period_to)
    submission, replayed = await runtime.submissions.submit(actor, start, end, keyed)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return submission.answer()


async def _as_pdf(report: dict[str, Any], start: datetime, end: datetime) -> Response:
    digest = reports.digest(report)
    try:
        document = await asyncio.to_thread(documents.pdf, report, digest)
    except documents.PdfUnavailable as error:
        raise Problem(503, str(error)) from error
    name = f"implementation-report-{start:%Y%m%d}-{end:%Y%m%d}.pdf"
    return Response(
        document,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"', "Digest": f"sha-256={digest}"},
    )
