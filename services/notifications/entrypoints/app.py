"""The notifications service's HTTP app: the shared service edge, subscriptions, the stream."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from services.notifications.entrypoints import calendar, stream, subscriptions
from shared.http.service import create_service_app

if TYPE_CHECKING:
    from services.notifications.bootstrap import NotificationsRuntime

DESCRIPTION = """Deadline alerts of policytrack: approaching, due, overdue and escalated. Subscribe a
webhook (signed by the Standard Webhooks specification) or a mailbox, follow the live stream
of the alerts your department may see (server-sent events, resumable with `Last-Event-ID`),
or put the deadlines in your own calendar through a secret-address iCalendar feed."""


def create_app(runtime: NotificationsRuntime) -> FastAPI:
    app = create_service_app("notifications", runtime, title="policytrack notifications", description=DESCRIPTION)
    app.include_router(subscriptions.router)
    app.include_router(stream.router)
    app.include_router(calendar.router)
    return app
