"""``GET /v1/alerts/stream``: server-sent events of the alerts the caller may see, lossless.

Each event's id is the stream's position after it; resuming with ``Last-Event-ID`` sends
every later alert exactly once; without one, the stream starts at the latest alert (or, with
``from=beginning``, at the first). The stream ends (with an ``end`` event saying why) when the
caller's token expires. Each user may hold a few streams at once, and everyone together a
bounded number (``POLICYTRACK_NOTIFICATIONS_STREAMS``); over either, 429 with Retry-After."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from services.notifications.adapters.alert_stream import StreamPosition, alerts_from
from services.notifications.api.dependencies import Runtime
from services.notifications.bootstrap import NotificationsRuntime
from shared.auth import Actor, can_read
from shared.contract.catalog import short_type
from shared.contract.codec import to_structured
from shared.contract.envelope import AnyEvent
from shared.http.bounds import Slot
from shared.http.problems import Problem, problem_responses
from shared.http.service import Authenticated
from shared.provenance.gate import ProofGate

router = APIRouter(tags=["alerts"])
HEARTBEAT_SECONDS = 15
SSE_EVENT = {
    "type": "object",
    "description": "one server-sent event: an alert (id: the stream position after it), or the stream's end",
    "properties": {
        "id": {"type": "string", "pattern": r"^\d+-\d+(\.\d+-\d+)*$"},
        "event": {"type": "string", "examples": ["alert.overdue", "end"]},
        "data": {"type": "string", "contentMediaType": "application/cloudevents+json"},
        "retry": {"type": "integer"},
    },
}


@router.get(
    "/v1/alerts/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {"schema": SSE_EVENT}}, "description": "server-sent events"},
        **problem_responses(401, 422, 429),
    },
    summary="Server-sent events of the alerts you may see; resumable with Last-Event-ID",
)
async def alert_stream(
    request: Request,
    actor: Authenticated,
    runtime: Runtime,
    last_event_id: Annotated[str | None, Header(max_length=20_000)] = None,
    start: Annotated[Literal["beginning", "now"], Query(alias="from")] = "now",
) -> StreamingResponse:
    resume = last_event_id or request.query_params.get("last_event_id")
    try:
        position = StreamPosition.parse(resume) if resume else None
    except ValueError as error:
        raise Problem(422, str(error), field="Last-Event-ID") from error
    slot = runtime.streams.take(actor.user)
    return StreamingResponse(
        _held(slot, _events(request, actor, runtime, position, start == "now")),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _held(slot: Slot, events: AsyncGenerator[bytes]) -> AsyncIterator[bytes]:
    """The stream's events, its slot released when it ends, however it ends (and its consumer
    closed then, not whenever the collector comes to it)."""
    try:
        async for event in events:
            yield event
    finally:
        slot.release()
        await events.aclose()


async def _events(
    request: Request, actor: Actor, runtime: NotificationsRuntime, position: StreamPosition | None, from_end: bool
) -> AsyncGenerator[bytes]:
    yield b"retry: 2000\n\n"
    quiet_since = time.monotonic()
    proofs = ProofGate(runtime.trust)
    async for alert, after in alerts_from(runtime.settings.kafka, proofs, position, from_end=from_end):
        # A token expires on the machine's clock, as the verifier that admitted it reads it.
        if actor.expires_at is not None and datetime.now(UTC) >= actor.expires_at:
            yield (
                b"event: end\ndata: "
                + orjson.dumps({"reason": "the token expired; reconnect with a new one"})
                + b"\n\n"
            )
            return
        if alert is not None and _may_see(actor, alert):
            quiet_since = time.monotonic()
            yield _sse(alert, after)
        elif time.monotonic() - quiet_since >= HEARTBEAT_SECONDS:
            quiet_since = time.monotonic()
            if await request.is_disconnected():
                return
            yield b": keep-alive\n\n"


def _may_see(actor: Actor, alert: AnyEvent) -> bool:
    data = alert.data
    return can_read(actor, (*getattr(data, "departments", ()), getattr(data, "escalated_to", None)))


def _sse(alert: AnyEvent, after: StreamPosition) -> bytes:
    return (
        b"id: "
        + after.encode().encode()
        + b"\nevent: "
        + short_type(alert.type).encode()
        + b"\ndata: "
        + to_structured(alert)
        + b"\n\n"
    )
