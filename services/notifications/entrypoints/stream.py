"""``GET /v1/alerts/stream``: server-sent events of the alerts the caller may see, lossless.

Each event's id is the stream's position after it; resuming with ``Last-Event-ID`` sends
every later alert exactly once; without one, the stream starts at the latest alert (or, with
``from=beginning``, at the first). The stream ends (with an ``end`` event saying why) when the
caller's token expires. Each user may hold a few streams at once, and everyone together a
bounded number (``POLICYTRACK_NOTIFICATIONS_STREAMS``); over either, 429 with Retry-After."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from services.notifications.adapters.alert_stream import StreamPosition
from services.notifications.entrypoints.dependencies import Runtime
from shared.auth import Actor, can_read
from shared.contract.catalog import short_type
from shared.contract.codec import to_structured
from shared.contract.envelope import AnyEvent
from shared.http.problems import Problem, problem_responses
from shared.http.service import Authenticated

router = APIRouter(tags=["alerts"])
RETRY_MILLISECONDS = 2000
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


async def resumed_at(
    request: Request, last_event_id: Annotated[str | None, Header(max_length=20_000)] = None
) -> StreamPosition | None:
    """Where the caller's last stream ended (``Last-Event-ID``, or the query parameter of that
    name for clients that cannot set headers); None: a new stream."""
    resume = last_event_id or request.query_params.get("last_event_id")
    try:
        return StreamPosition.parse(resume) if resume else None
    except ValueError as error:
        raise Problem(422, str(error), field="Last-Event-ID") from error


async def stream_slot(actor: Authenticated, runtime: Runtime) -> AsyncIterator[None]:
    """One of the caller's streams, held until the stream ends, however it ends (429 over the bound)."""
    slot = runtime.streams.take(actor.user)
    try:
        yield
    finally:
        slot.release()


@router.get(
    "/v1/alerts/stream",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {"schema": SSE_EVENT}}, "description": "server-sent events"},
        **problem_responses(401, 422, 429),
    },
    dependencies=[Depends(stream_slot)],
    summary="Server-sent events of the alerts you may see; resumable with Last-Event-ID",
)
async def alert_stream(
    actor: Authenticated,
    runtime: Runtime,
    position: Annotated[StreamPosition | None, Depends(resumed_at)],
    start: Annotated[Literal["beginning", "now"], Query(alias="from")] = "now",
) -> AsyncIterator[ServerSentEvent]:
    # FastAPI frames the events and sends a keep-alive comment when the stream is quiet.
    yield ServerSentEvent(retry=RETRY_MILLISECONDS)
    async for alert, after in runtime.follow_alerts(position, from_end=start == "now"):
        # A token expires on the machine's clock, as the verifier that admitted it reads it.
        if actor.expires_at is not None and datetime.now(UTC) >= actor.expires_at:
            yield ServerSentEvent(event="end", data={"reason": "the token expired; reconnect with a new one"})
            return
        if alert is not None and _may_see(actor, alert):
            yield ServerSentEvent(
                raw_data=to_structured(alert).decode(), event=short_type(alert.type), id=after.encode()
            )


def _may_see(actor: Actor, alert: AnyEvent) -> bool:
    data = alert.data
    return can_read(actor, (*getattr(data, "departments", ()), getattr(data, "escalated_to", None)))
