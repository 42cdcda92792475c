"""The audit service's HTTP app: the shared service edge and the trail's routers. Nobody writes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request

from services.audit.entrypoints import proofs, reports, trail
from shared.http.problems import Problem
from shared.http.service import create_service_app

if TYPE_CHECKING:
    from services.audit.bootstrap import AuditRuntime

DESCRIPTION = """The audit trail of policytrack: every record of `policy.events`, `policy.alerts` and
`policy.deadletter`, kept once each in an append-only, hash-chained store with signed
checkpoints. Query who did what and when, replay a task as of any moment, verify that the
trail is intact, export it. Nobody writes here."""


def create_app(runtime: AuditRuntime) -> FastAPI:
    app = create_service_app("audit", runtime, title="policytrack audit", description=DESCRIPTION)
    app.include_router(trail.router)
    app.include_router(proofs.router)
    app.include_router(reports.router)

    @app.api_route("/v1/audit/{path:path}", methods=["POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def no_writes(path: str, request: Request) -> None:
        raise Problem(405, "the audit trail is read-only", headers={"Allow": "GET"})

    return app
