"""The notifications service's HTTP edge: subscriptions and the live alert stream."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from services.notifications.bootstrap import NotificationsRuntime
from services.notifications.handlers import may_see, stream_position
from services.notifications.subscriptions import Subscription, SubscriptionBody, new_secret
from shared.auth import Actor, reads_everything
from shared.contract import catalog as c
from shared.contract.codec import to_structured
from shared.contract.envelope import CloudEvent, new_event
from shared.contract.types import redacted_url
from shared.http.problems import Problem
from shared.http.service import Authenticated, create_service_app

DESCRIPTION = """Deadline alerts of policytrack: approaching, due, overdue and escalated. Subscribe a
webhook (signed by the Standard Webhooks specification) or follow the live stream of the
alerts your department may see (server-sent events, resumable with `Last-Event-ID`)."""
HEARTBEAT_SECONDS = 15


def create_app(runtime: NotificationsRuntime) -> Any:
    app = create_service_app("notifications", runtime, title="policytrack notifications", description=DESCRIPTION)
    service = runtime.service

    def visible(subscription: Subscription, actor: Actor) -> bool:
        return reads_everything(actor) or subscription.department == actor.department or (
            subscription.created_by == actor.user)

    @app.post("/v1/subscriptions", status_code=201, tags=["subscriptions"],
              summary="Subscribe a webhook to the alerts your department may see")  # fmt: skip
    async def subscribe(actor: Authenticated, body: SubscriptionBody) -> JSONResponse:
        department = body.department
        if not reads_everything(actor):
            if department not in (None, actor.department):
                raise Problem(403, f"{actor.department} may subscribe only to its own alerts", field="department")
            department = actor.department
            task = service.schedule.tasks.get(body.task_id) if body.task_id else None
            if body.task_id and (task is None or actor.department not in task[1]):
                raise Problem(403, f"{actor.department} neither leads nor supports task {body.task_id}",
                              field="task_id")  # fmt: skip
        refusal = await service.addresses.checked(str(body.webhook_url), ttl=0)
        if refusal is not None:
            raise Problem(422, refusal, field="webhook_url")
        secret = body.secret or new_secret()
        url = str(body.webhook_url)
        created = c.SubscriptionCreated(subscription_id=f"sub-{uuid.uuid4().hex[:16]}", department=department,
                                        task_id=body.task_id, event_types=body.event_types,
                                        webhook_url=redacted_url(url), sealed_webhook_url=service.sealer.seal(url),
                                        sealed_secret=service.sealer.seal(secret))  # fmt: skip
        event = new_event(created, actor=actor.user, actordept=actor.department)
        await service.producer.publish(event)
        await service.on_record(event, None)  # so that a GET right after sees it
        subscription = service.subscriptions[created.subscription_id]
        return JSONResponse({**subscription.public(), "secret": secret}, status_code=201)

    @app.get("/v1/subscriptions", tags=["subscriptions"])
    async def list_subscriptions(actor: Authenticated) -> dict[str, Any]:
        mine = [s.public() for s in service.subscriptions.values() if visible(s, actor)]
        return {"items": sorted(mine, key=lambda s: str(s["created_at"]))}

    @app.get("/v1/subscriptions/{subscription_id}", tags=["subscriptions"])
    async def get_subscription(subscription_id: str, actor: Authenticated) -> dict[str, Any]:
        subscription = service.subscriptions.get(subscription_id)
        if subscription is None or not visible(subscription, actor):
            raise Problem(404, f"no subscription {subscription_id} that you may see")
        return subscription.public()

    @app.delete("/v1/subscriptions/{subscription_id}", status_code=204, tags=["subscriptions"])
    async def unsubscribe(subscription_id: str, actor: Authenticated) -> Response:
        subscription = service.subscriptions.get(subscription_id)
        if subscription is None or not visible(subscription, actor):
            raise Problem(404, f"no subscription {subscription_id} that you may see")
        event = new_event(c.SubscriptionRemoved(subscription_id=subscription_id), actor=actor.user,
                          actordept=actor.department)  # fmt: skip
        await service.producer.publish(event)
        await service.on_record(event, None)
        return Response(status_code=204)

    @app.get("/v1/alerts/stream", tags=["alerts"], response_class=StreamingResponse,
             summary="Server-sent events of the alerts you may see; resumable with Last-Event-ID")  # fmt: skip
    async def alert_stream(request: Request, actor: Authenticated) -> StreamingResponse:
        last = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
        return StreamingResponse(_events(request, actor, last), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})  # fmt: skip

    async def _events(request: Request, actor: Actor, last: str | None) -> AsyncIterator[bytes]:
        queue = service.stream.listen()
        try:
            yield b"retry: 2000\n\n"
            for alert in service.stream.since(last):
                if may_see(actor, alert):
                    last = stream_position(alert)
                    yield _sse(alert)
            while not await request.is_disconnected():
                try:
                    alert = await asyncio.wait_for(queue.get(), timeout=HEARTBEAT_SECONDS)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if may_see(actor, alert) and (last is None or stream_position(alert) > last):
                    last = stream_position(alert)
                    yield _sse(alert)
        finally:
            service.stream.forget(queue)

    return app


def _sse(alert: CloudEvent) -> bytes:
    kind = alert.type.removeprefix("org.policytrack.").removesuffix(".v1")
    return b"id: " + stream_position(alert).encode() + b"\nevent: " + kind.encode() + b"\ndata: " + \
        to_structured(alert) + b"\n\n"


