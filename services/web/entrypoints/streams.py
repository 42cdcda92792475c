"""What the dashboard passes on as it arrives: the live alert stream (server-sent events, resumed
by the browser's Last-Event-ID) and exports of the trail. The user's token stays on the server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Annotated, Literal

import httpx
from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import StreamingResponse

from services.web.entrypoints.session import Runtime, SignedIn
from shared.contract.types import AGGREGATE_ID_PATTERN, SHA256_PATTERN
from shared.logging import get_logger

router = APIRouter(include_in_schema=False)
TaskId = Annotated[str, Path(pattern=AGGREGATE_ID_PATTERN, max_length=128)]
Sha256 = Annotated[str, Path(pattern=SHA256_PATTERN)]
log = get_logger(__name__)


async def relayed(
    upstream: AbstractAsyncContextManager[httpx.Response],
    *,
    media_type: str | None,
    headers: dict[str, str],
    passed: tuple[str, ...] = (),
) -> StreamingResponse:
    """The upstream response is opened before answering, so that its refusal (say 403) is this
    answer's; once open, its bytes are passed on unchanged until either side ends. An upstream
    that goes silent for the relay's timeout, or breaks off, ends the answer as a stream ends:
    the browser's EventSource reconnects from the last event it saw."""
    stack = AsyncExitStack()
    response = await stack.enter_async_context(upstream)

    async def body() -> AsyncIterator[bytes]:
        async with stack:
            try:
                async for chunk in response.aiter_raw():
                    yield chunk
            except httpx.TransportError as error:
                log.info("relayed_stream_ended", url=str(response.url.path), reason=type(error).__name__)

    headers = {**headers, **{name: response.headers[name] for name in passed if name in response.headers}}
    return StreamingResponse(body(), media_type=media_type or response.headers.get("content-type"), headers=headers)


@router.get("/alerts/stream")
async def alert_stream(
    web: Runtime, session: SignedIn, last_event_id: Annotated[str | None, Header(max_length=20_000)] = None
) -> StreamingResponse:
    # The dashboard's list starts with the alerts raised so far; a reconnection goes on from
    # the last one it showed.
    upstream = web.backends.stream(
        "notifications",
        "/v1/alerts/stream",
        session.token,
        params=None if last_event_id else {"from": "beginning"},
        headers={"Last-Event-ID": last_event_id} if last_event_id else None,
    )
    return await relayed(
        upstream, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


@router.get("/tasks/{task_id}/evidence/{sha256}")
async def evidence(web: Runtime, session: SignedIn, task_id: TaskId, sha256: Sha256) -> StreamingResponse:
    """A file a task's act rests on, as the tasks service serves it (checked against its hash)."""
    upstream = web.backends.stream("tasks", f"/v1/tasks/{task_id}/evidence/{sha256}", session.token)
    return await relayed(
        upstream,
        media_type=None,
        headers={"X-Content-Type-Options": "nosniff"},
        passed=("content-disposition", "digest"),
    )


@router.get("/report.pdf")
async def report_document(
    web: Runtime,
    session: SignedIn,
    period_from: Annotated[str, Query(alias="from", max_length=64)] = "",
    period_to: Annotated[str, Query(alias="to", max_length=64)] = "",
) -> StreamingResponse:
    """The NDRC's report as the audit service lays it out: a formal document in Chinese."""
    period = {"format": "pdf", **{k: v for k, v in {"from": period_from, "to": period_to}.items() if v}}
    upstream = web.backends.stream("audit", "/v1/audit/reports/implementation", session.token, period)
    return await relayed(upstream, media_type="application/pdf", headers={}, passed=("content-disposition", "digest"))


@router.get("/trail/export")
async def export(web: Runtime, session: SignedIn, format: Literal["ndjson", "csv"] = "ndjson") -> StreamingResponse:
    upstream = web.backends.stream("audit", "/v1/audit/export", session.token, {"format": format})
    return await relayed(
        upstream,
        media_type="application/x-ndjson" if format == "ndjson" else "text/csv",
        headers={"Content-Disposition": f'attachment; filename="policytrack-audit.{format}"'},
    )
