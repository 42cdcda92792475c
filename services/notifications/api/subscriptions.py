"""Webhook subscriptions: make one, list and read those you may see, remove one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.notifications.api.dependencies import Runtime, Service, SubscriptionIdPath
from services.notifications.domain.subscriptions import SubscriptionBody, may_see
from shared.contract.codes import Department
from shared.http.bounds import over
from shared.http.links import fills
from shared.http.problems import problem_responses
from shared.http.service import Authenticated

router = APIRouter(tags=["subscriptions"])


class SubscriptionView(BaseModel):
    id: str
    department: Department | None
    task_id: str | None
    event_types: list[str]
    webhook_url: str
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
    service = runtime.service
    subscriptions = service.subscriptions.values()
    mine = sum(1 for s in subscriptions if s.created_by == actor.user)
    if (refused := over(runtime.settings.subscriptions, "subscriptions", mine, len(subscriptions))) is not None:
        raise refused
    subscription, secret = await service.subscribe(body, actor)
    return JSONResponse({**subscription.public(), "secret": secret}, status_code=201)


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
