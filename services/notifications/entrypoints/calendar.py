"""Calendar feeds: make one (its secret address shown once), list, rotate and revoke those you
keep, and the feed itself at its secret address, which calendar clients read without a token."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel

from services.notifications.domain.calendar_feed import FeedBody
from services.notifications.entrypoints.dependencies import Service
from shared.contract.codes import Department
from shared.contract.types import AGGREGATE_ID_PATTERN
from shared.http.links import fills
from shared.http.problems import problem_responses
from shared.http.service import Authenticated

router = APIRouter(tags=["calendar"])
FeedIdPath = Annotated[str, Path(pattern=AGGREGATE_ID_PATTERN, max_length=128, examples=["feed-5f0c2a9e1b3d4c6a"])]
SecretPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{20,100}$", description="the feed's secret")]
ICS = "text/calendar; charset=utf-8"


class FeedView(BaseModel):
    id: str
    owner: Literal["person", "department"]
    scope: Literal["own", "all"]
    department: Department
    created_by: str
    language: str
    created_at: str


class IssuedFeed(FeedView):
    url: str
    """The secret address, relative to this service: shown once."""


class FeedList(BaseModel):
    items: list[FeedView]


def _address(secret: str) -> str:
    return f"/v1/calendar/{secret}.ics"


@router.post(
    "/v1/calendar-feeds",
    status_code=201,
    response_model=IssuedFeed,
    responses=problem_responses(401, 403, 413, 422, 503),
    openapi_extra=fills(feed_id="$response.body#/id"),
    summary="A secret address of an iCalendar feed of the deadlines you may see (shown once)",
)
async def issue_feed(actor: Authenticated, service: Service, body: FeedBody | None = None) -> dict[str, Any]:
    feed, secret = await service.issue_feed(body or FeedBody(), actor)
    return {**feed.public(), "url": _address(secret)}


@router.get(
    "/v1/calendar-feeds", response_model=FeedList, responses=problem_responses(401), summary="The feeds you keep"
)
async def list_feeds(actor: Authenticated, service: Service) -> dict[str, Any]:
    kept = [feed.public() for feed in service.kept_feeds(actor)]
    return {"items": sorted(kept, key=lambda feed: str(feed["created_at"]))}


@router.post(
    "/v1/calendar-feeds/{feed_id}/rotation",
    response_model=IssuedFeed,
    responses=problem_responses(401, 404, 422, 503),
    summary="A new secret address for the feed; the old one answers 404 from now on",
)
async def rotate_feed(feed_id: FeedIdPath, actor: Authenticated, service: Service) -> dict[str, Any]:
    secret = await service.rotate_feed(feed_id, actor)
    return {**service.kept_feed(feed_id, actor).public(), "url": _address(secret)}


@router.delete(
    "/v1/calendar-feeds/{feed_id}",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 404, 422, 503),
    summary="Revoke the feed: its address answers 404 from now on",
)
async def revoke_feed(feed_id: FeedIdPath, actor: Authenticated, service: Service) -> Response:
    await service.revoke_feed(feed_id, actor)
    return Response(status_code=204)


@router.get(
    "/v1/calendar/{secret}.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}, **problem_responses(404, 422)},
    summary="The feed at its secret address (no token: calendar clients cannot send one)",
)
async def calendar(secret: SecretPath, service: Service) -> Response:
    return Response(
        service.calendar(secret),
        media_type=ICS,
        headers={"Cache-Control": "private, max-age=300", "Referrer-Policy": "no-referrer"},
    )
