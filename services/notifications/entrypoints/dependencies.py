"""What routes depend on, read from the runtime that ``bootstrap`` wired into ``app.state``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from services.notifications.application.service import NotificationService
from services.notifications.bootstrap import NotificationsRuntime
from shared.contract.types import AGGREGATE_ID_PATTERN
from shared.http.service import runtime_of

runtime = runtime_of(NotificationsRuntime)


async def notification_service(request: Request) -> NotificationService:
    return (await runtime(request)).service


Service = Annotated[NotificationService, Depends(notification_service)]
Runtime = Annotated[NotificationsRuntime, Depends(runtime)]
SubscriptionIdPath = Annotated[
    str, Path(pattern=AGGREGATE_ID_PATTERN, max_length=128, examples=["sub-5f0c2a9e1b3d4c6a"])
]
