"""The tasks service's HTTP app: the shared service edge (which answers the rules' refusals),
the read and write routers, and how the application's own conditions are answered."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.tasks.adapters.event_log import Fenced, LogUnavailable
from services.tasks.application.answers import (
    KeyInFlight,
    KeyReused,
    StaleVersion,
)
from services.tasks.entrypoints import duties, evidence, reads, writes
from services.tasks.entrypoints.statuses import KEY_IN_FLIGHT, KEY_REUSED, STALE_VERSION
from shared.http.problems import problem_response
from shared.http.service import create_service_app

if TYPE_CHECKING:
    from services.tasks.bootstrap import TasksRuntime

DESCRIPTION = """The command side of policytrack: departmental systems create and assign tasks, schedule
milestones, report progress and issues, request approvals and record evaluations. Every
write is checked against the division of responsibilities and appended to Kafka before it
is answered. Writes accept `If-Match: <version>` (412 when stale) and `Idempotency-Key`
(a retry of the same request gets the first answer; the same key for another request 422,
while the first is in flight 409). Ids match `^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`; times
carry an offset and lie between 2000-01-01 and 2200-12-31 (UTC)."""


def create_app(runtime: TasksRuntime) -> FastAPI:
    app = create_service_app(
        "tasks",
        runtime,
        title="policytrack tasks",
        description=DESCRIPTION,
        streamed=re.compile(re.escape(evidence.UPLOAD)),
    )
    app.include_router(reads.router)
    app.include_router(writes.router)
    app.include_router(duties.router)
    app.include_router(evidence.router)
    app.add_exception_handler(StaleVersion, _stale)
    app.add_exception_handler(KeyReused, _key_reused)
    app.add_exception_handler(KeyInFlight, _key_in_flight)
    app.add_exception_handler(Fenced, _unavailable)
    app.add_exception_handler(LogUnavailable, _unavailable)
    return app


async def _stale(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StaleVersion)
    return problem_response(STALE_VERSION, str(error), instance=request.url.path, current_version=error.current)


async def _key_reused(request: Request, error: Exception) -> JSONResponse:
    return problem_response(KEY_REUSED, str(error), field="Idempotency-Key", instance=request.url.path)


async def _key_in_flight(request: Request, error: Exception) -> JSONResponse:
    return problem_response(KEY_IN_FLIGHT, str(error), instance=request.url.path, headers={"Retry-After": "1"})


async def _unavailable(request: Request, error: Exception) -> JSONResponse:
    return problem_response(503, str(error), instance=request.url.path, headers={"Retry-After": "5"})
