"""The audit service's HTTP edge: query, replay, verify and export the trail. Read-only."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import AwareDatetime

from services.audit import handlers, verification
from services.audit.bootstrap import AuditRuntime
from services.audit.keys import public_pem
from services.audit.store import EntryFilter
from shared.auth import Actor
from shared.contract.catalog import CATALOG, TYPE_PREFIX
from shared.contract.codes import Department
from shared.http.problems import Problem
from shared.http.service import Authenticated, create_service_app

DESCRIPTION = """The audit trail of policytrack: every record of `policy.events`, `policy.alerts` and
`policy.deadletter`, kept once each in an append-only, hash-chained store with signed
checkpoints. Query who did what and when, replay a task as of any moment, verify that the
trail is intact, export it. Nobody writes here."""


def create_app(runtime: AuditRuntime) -> Any:
    app = create_service_app("audit", runtime, title="policytrack audit", description=DESCRIPTION)
    store = runtime.store

    @app.get("/v1/audit/events", tags=["audit"], summary="Entries of the trail, filtered, in log order")
    async def audit_events(
        where: Annotated[EntryFilter, Depends(trail_filter)],
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> JSONResponse:
        rows, more = await store.page(replace(where, after_sequence=_cursor(cursor)), limit)
        items = [orjson.loads(handlers.ndjson_line(row)) for row in rows]
        next_cursor = _encode_cursor(rows[-1].seq) if more else None
        return JSONResponse({"items": items, "next_cursor": next_cursor})

    @app.get("/v1/audit/tasks/{task_id}/state", tags=["audit"],
             summary="A task's state as of a moment, replayed with the tasks service's own evolve")  # fmt: skip
    async def task_state(task_id: str, actor: Authenticated, as_of: AwareDatetime | None = None) -> JSONResponse:
        task = await handlers.replay_task(store, task_id, as_of)
        department = handlers.visibility(actor)
        if task is None or (department is not None and not task.responsible(Department(department))):
            raise Problem(404, f"no task {task_id} that you may see" + (f" as of {as_of.isoformat()}" if as_of else ""))
        return JSONResponse(task.model_dump(mode="json"), headers={"ETag": f'"{task.version}"'})

    @app.get("/v1/audit/verify", tags=["audit"],
             summary="Recompute the chain, check checkpoints, compare every entry with the Kafka log")  # fmt: skip
    async def verify(actor: Authenticated, against_log: bool = True) -> dict[str, Any]:
        _everything(actor)
        result = await verification.verify(store, runtime.trusted_keys, runtime.settings.chain_id,
                                           runtime.settings.kafka if against_log else None)  # fmt: skip
        return result.as_dict()

    @app.get("/v1/audit/export", tags=["audit"], summary="The trail as NDJSON or CSV, streamed")
    async def export(
        where: Annotated[EntryFilter, Depends(trail_filter)], format: Literal["ndjson", "csv"] = "ndjson"
    ) -> StreamingResponse:
        media = "application/x-ndjson" if format == "ndjson" else "text/csv"
        return StreamingResponse(handlers.export(store, where, format), media_type=media,
                                 headers={"Content-Disposition": f'attachment; filename="policytrack-audit.{format}"'})

    @app.get("/v1/audit/responsibility", tags=["audit"],
             summary="Per department: assigned (lead, supporting), acts, late, escalated")  # fmt: skip
    async def responsibility(actor: Authenticated) -> dict[str, Any]:
        _everything(actor)
        return {"as_of": datetime.now(UTC).isoformat(), "departments": await handlers.responsibility(
            store, datetime.now(UTC))}  # fmt: skip

    @app.get("/v1/audit/checkpoints", tags=["audit"], summary="Signed checkpoints and the keys that verify them")
    async def checkpoints(actor: Authenticated) -> dict[str, Any]:
        rows = await store.checkpoints()
        return {"chain": runtime.settings.chain_id, "key_id": runtime.signing_key.key_id,
                "public_key": public_pem(runtime.signing_key.public_key), "keys": runtime.trusted_keys.published(),
                "checkpoints": [dict(row._mapping) for row in rows]}  # fmt: skip

    @app.api_route("/v1/audit/{path:path}", methods=["POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def no_writes(path: str, request: Request) -> None:
        raise Problem(405, "the audit trail is read-only", headers={"Allow": "GET"})

    return app


def trail_filter(
    actor: Authenticated,
    task_id: str | None = None,
    actor_id: Annotated[str | None, Query(alias="actor")] = None,
    department: Department | None = None,
    type: str | None = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> EntryFilter:
    """The filters that querying and exporting share, bounded by what the caller may see."""
    return EntryFilter(task_id=task_id, actor=actor_id, department=department and str(department),
                       event_type=_event_type(type), since=since, until=until,
                       visible_to_department=handlers.visibility(actor))  # fmt: skip


def _everything(actor: Actor) -> None:
    if handlers.visibility(actor) is not None:
        raise Problem(403, "verification and the responsibility report are for auditors, supervisors and admins")


def _event_type(name: str | None) -> str | None:
    if name is None:
        return None
    full = name if name.startswith(TYPE_PREFIX) else f"{TYPE_PREFIX}{name}.v1"
    if full not in CATALOG:
        raise Problem(422, f"unknown event type {name!r}", field="type")
    return full


def _encode_cursor(sequence: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{sequence}".encode()).decode().rstrip("=")


def _cursor(cursor: str | None) -> int:
    if cursor is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix != "seq" or not number.isdigit():
            raise ValueError
        return int(number)
    except ValueError as error:
        raise Problem(422, "not a cursor this service issued", field="cursor") from error
