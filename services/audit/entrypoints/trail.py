"""The trail itself: entries filtered and paged in log order, and the whole of it exported."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from services.audit.adapters.schema import TrailEntry
from services.audit.application.export import export, ndjson_line
from services.audit.entrypoints.dependencies import Runtime, Store, TrailFilter
from shared.cursor import BadCursor, decode_cursor, encode_cursor
from shared.http.links import fills
from shared.http.problems import Problem, problem_responses

router = APIRouter(tags=["audit"])
LOOK_AGAIN_SECONDS = 0.25
"""How often a waiting reader looks again without news from this instance's own writes."""


class Entry(BaseModel):
    """One entry of the trail: a record of the log, its place in the chain, its event."""

    seq: int
    topic: str
    partition: int
    offset: int
    timestamp: int
    prev_hash: str
    hash: str
    event: dict[str, Any] | None
    decode_error: str | None
    raw: dict[str, Any] | None


class EntryPage(BaseModel):
    items: list[Entry]
    next_cursor: str | None


@router.get(
    "/v1/audit/events",
    response_model=EntryPage,
    responses=problem_responses(401, 422),
    openapi_extra=fills(event_id="$response.body#/items/0/event/id"),
    summary="Entries of the trail, filtered, in log order",
)
async def audit_events(
    where: TrailFilter,
    store: Store,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    wait: Annotated[
        float,
        Query(ge=0, le=30, description="seconds to wait for a first entry when none matches yet (following the trail)"),
    ] = 0,
) -> JSONResponse:
    try:
        after = int(decode_cursor(cursor, int)[0]) if cursor else 0
    except BadCursor as error:
        raise Problem(422, str(error), field="cursor") from error
    where = replace(where, after_sequence=after)
    give_up_at = time.monotonic() + wait
    rows, more = (
        ([], False) if wait and store.holds_nothing_after(after) else await store.page(TrailEntry, where, limit)
    )
    while not rows and (left := give_up_at - time.monotonic()) > 0:
        await store.written(min(left, LOOK_AGAIN_SECONDS))
        rows, more = await store.page(TrailEntry, where, limit)
    items = [orjson.loads(ndjson_line(row)) for row in rows]
    return JSONResponse({"items": items, "next_cursor": encode_cursor(rows[-1].seq) if more else None})


@router.get(
    "/v1/audit/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
            "description": "every matching entry, streamed",
        },
        **problem_responses(401, 422),
    },
    summary="The trail as NDJSON or CSV, streamed",
)
async def export_trail(
    where: TrailFilter, runtime: Runtime, format: Literal["ndjson", "csv"] = "ndjson"
) -> StreamingResponse:
    media = "application/x-ndjson" if format == "ndjson" else "text/csv"
    return StreamingResponse(
        export(runtime.store, where, format, apart_from=runtime.settings.export_second_process_from),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="policytrack-audit.{format}"'},
    )
