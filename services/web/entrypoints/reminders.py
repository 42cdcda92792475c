"""The reader's own reminders: calendar links of their deadlines (made, rotated, revoked, the
secret address shown once) and reminders by mail, kept by the notifications service; and the
calendar feed itself at its secret address, passed on to calendar clients that carry no token."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from services.web.adapters.backends import BackendRefused
from services.web.adapters.sessions import Session
from services.web.bootstrap import WebRuntime
from services.web.entrypoints.pages import shown
from services.web.entrypoints.session import Runtime, SignedIn, checked, same_origin
from shared.contract.types import AGGREGATE_ID_PATTERN

router = APIRouter(include_in_schema=False)
Language = Literal["zh-CN", "en", "ko"]
Csrf = Annotated[str, Form(max_length=200)]
KeptId = Annotated[str, Path(pattern=AGGREGATE_ID_PATTERN, max_length=128)]


@router.get("/reminders")
async def reminders_page(request: Request, web: Runtime, session: SignedIn) -> Response:
    return await _page(request, web, session)


@router.post("/reminders/calendar")
async def make_calendar_link(
    request: Request,
    web: Runtime,
    session: SignedIn,
    csrf: Csrf,
    owner: Annotated[Literal["person", "department"], Form()] = "person",
    language: Annotated[Language, Form()] = "zh-CN",
) -> Response:
    _checked(request, session, csrf)
    made = await web.backends.post(
        "notifications", "/v1/calendar-feeds", session.token, {"owner": owner, "language": language}
    )
    return await _page(request, web, session, new_link=_link(request, made["url"]))


@router.post("/reminders/calendar/{feed_id}/rotate")
async def rotate_calendar_link(
    request: Request, web: Runtime, session: SignedIn, feed_id: KeptId, csrf: Csrf
) -> Response:
    _checked(request, session, csrf)
    rotated = await web.backends.post("notifications", f"/v1/calendar-feeds/{feed_id}/rotation", session.token, None)
    return await _page(request, web, session, new_link=_link(request, rotated["url"]))


@router.post("/reminders/calendar/{feed_id}/revoke")
async def revoke_calendar_link(
    request: Request, web: Runtime, session: SignedIn, feed_id: KeptId, csrf: Csrf
) -> Response:
    _checked(request, session, csrf)
    await web.backends.delete("notifications", f"/v1/calendar-feeds/{feed_id}", session.token)
    return RedirectResponse("/reminders", status_code=303)


@router.post("/reminders/mail")
async def subscribe_mailbox(
    request: Request,
    web: Runtime,
    session: SignedIn,
    csrf: Csrf,
    address: Annotated[str, Form(max_length=254)],
    recipient: Annotated[Literal["me", "department"], Form()] = "me",
    language: Annotated[Language, Form()] = "zh-CN",
    digest: Annotated[bool, Form()] = False,
) -> Response:
    _checked(request, session, csrf)
    body = {"address": address, "recipient": recipient, "language": language, "digest": digest}
    try:
        await web.backends.post("notifications", "/v1/mail-subscriptions", session.token, body)
    except BackendRefused as refused:
        if refused.status != 422:
            raise
        return await _page(request, web, session, status=422, mail_error=refused.detail, mail_address=address)
    return RedirectResponse("/reminders", status_code=303)


@router.post("/reminders/mail/{subscription_id}/remove")
async def remove_mailbox(
    request: Request, web: Runtime, session: SignedIn, subscription_id: KeptId, csrf: Csrf
) -> Response:
    _checked(request, session, csrf)
    await web.backends.delete("notifications", f"/v1/subscriptions/{subscription_id}", session.token)
    return RedirectResponse("/reminders", status_code=303)


@router.get("/calendar/{secret}.ics")
async def calendar_feed(web: Runtime, secret: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{20,100}$")]) -> Response:
    upstream = await web.backends.unsigned("notifications", f"/v1/calendar/{secret}.ics")
    passed = {k: v for k, v in upstream.headers.items() if k in ("content-type", "cache-control", "referrer-policy")}
    return Response(upstream.content, status_code=upstream.status_code, headers=passed)


async def _page(request: Request, web: WebRuntime, session: Session, status: int = 200, **context: Any) -> Response:
    feeds = await web.backends.get("notifications", "/v1/calendar-feeds", session.token)
    subscriptions = await web.backends.get("notifications", "/v1/subscriptions", session.token)
    mailboxes = [s for s in subscriptions["items"] if s.get("channel") == "mail"]
    return await shown(
        request, web, "reminders.html.j2", session, status=status, feeds=feeds["items"], mailboxes=mailboxes, **context
    )


def _checked(request: Request, session: Session, csrf: str) -> None:
    same_origin(request)
    checked(session, csrf)


def _link(request: Request, feed_path: str) -> str:
    """The dashboard's own address of the feed: calendar clients reach it where people do."""
    return str(request.base_url).rstrip("/") + feed_path.removeprefix("/v1")
