"""Subscriptions by webhook or by mail: make one, list and read those you may see, remove one."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.notifications.bootstrap import NotificationsRuntime
from services.notifications.domain.subscriptions import MailSubscriptionBody, SubscriptionBody, may_see
from services.notifications.entrypoints.dependencies import Runtime, Service, SubscriptionIdPath
from shared.bounds import over
from shared.contract.codes import Department
from shared.http.links import fills
from shared.http.problems import problem_responses
from shared.http.service import Authenticated

router = APIRouter(tags=["subscriptions"])


class SubscriptionView(BaseModel):
    id: str
    channel: Literal["webhook", "mail"]
    department: Department | None
    task_id: str | None
    event_types: list[str]
    webhook_url: str | None = None
    address: str | None = Field(default=None, description="a mail subscription's address")
    recipient: Literal["department", "me"] | None = None
    language: str | None = None
    digest: bool | None = None
    created_at: str
    created_by: str


class CreatedSubscription(SubscriptionView):
    secret: str


class SubscriptionList(BaseModel):
    items: list[SubscriptionView]


@router.post(
    "/v1/subscriptions",
    status_code=201,
    response_model=CreatedSubscription,
    responses=problem_responses(401, 403, 413, 422, 429, 503),
    openapi_extra=fills(subscription_id="$response.body#/id"),
    summary="Subscribe a webhook to the alerts your department may see",
)
async def subscribe(actor: Authenticated, runtime: Runtime, body: SubscriptionBody) -> JSONResponse:
    await _within_bounds(runtime, actor.user)
    subscription, secret = await runtime.service.subscribe(body, actor)
    return JSONResponse({**subscription.public(), "secret": secret}, status_code=201)


@router.post(
    "/v1/mail-subscriptions",
    status_code=201,
    response_model=SubscriptionView,
    responses=problem_responses(401, 403, 413, 422, 429, 503),
    openapi_extra=fills(subscription_id="$response.body#/id"),
    summary="Subscribe a department's mailbox, or your own, to the alerts and the daily digest",
)
async def subscribe_mail(actor: Authenticated, runtime: Runtime, body: MailSubscriptionBody) -> JSONResponse:
    await _within_bounds(runtime, actor.user)
    subscription = await runtime.service.subscribe_mail(body, actor)
    return JSONResponse(subscription.public(), status_code=201)


async def _within_bounds(runtime: NotificationsRuntime, user: str) -> None:
    subscriptions = runtime.service.subscriptions.values()
    mine = sum(1 for s in subscriptions if s.created_by == user)
    if (refused := over(runtime.settings.subscriptions, "subscriptions", mine, len(subscriptions))) is not None:
        raise refused


@router.get(
    "/v1/subscriptions",
    response_model=SubscriptionList,
    responses=problem_responses(401),
    summary="The subscriptions you may see",
)
async def list_subscriptions(actor: Authenticated, service: Service) -> dict[str, Any]:
    mine = [s.public() for s in service.subscriptions.values() if may_see(s, actor)]
    return {"items": sorted(mine, key=lambda s: str(s["created_at"]))}


@router.get(
    "/v1/subscriptions/{subscription_id}",
    response_model=SubscriptionView,
    responses=problem_responses(401, 404, 422),
    summary="A subscription you may see",
)
async def get_subscription(
    subscription_id: SubscriptionIdPath, actor: Authenticated, service: Service
) -> dict[str, Any]:
    return service.visible(subscription_id, actor).public()


@router.delete(
    "/v1/subscriptions/{subscription_id}",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="Remove a subscription: whoever made it, its department or an administrator",
)
async def unsubscribe(subscription_id: SubscriptionIdPath, actor: Authenticated, service: Service) -> Response:
    await service.unsubscribe(subscription_id, actor)
    return Response(status_code=204)
