"""Signing in and out, and what every page depends on: the session named by the cookie, and
for forms that post, the session's CSRF token and a same-origin request."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from services.web.adapters.sessions import Session
from services.web.bootstrap import WebRuntime
from services.web.entrypoints.rendering import LANGUAGE_COOKIE, page
from shared import i18n
from shared.auth import AuthError, mint_dev_token
from shared.contract.codes import Department, Role
from shared.http.service import runtime_of

SESSION_COOKIE = "policytrack_session"
SIGNIN_COOKIE = "policytrack_signin"
router = APIRouter(include_in_schema=False)
runtime = runtime_of(WebRuntime)
Runtime = Annotated[WebRuntime, Depends(runtime)]


class SignInNeeded(Exception):
    """No session (or an ended one): the page sends the browser to sign in, then back."""

    def __init__(self, back_to: str) -> None:
        super().__init__(back_to)
        self.back_to = back_to


class ForgedForm(Exception):
    """A post without this session's CSRF token, or from another origin."""


async def signed_in(request: Request, web: Runtime) -> Session:
    session = web.sessions.find(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise SignInNeeded(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return session


SignedIn = Annotated[Session, Depends(signed_in)]


def same_origin(request: Request) -> None:
    """Browsers send Origin on every POST; one naming another site is refused outright."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise ForgedForm(f"a form posted from {origin}")


def checked(session: Session, csrf: str) -> None:
    if not hmac.compare_digest(session.csrf.encode(), csrf.encode()):
        raise ForgedForm("the form's CSRF token is not this session's")


def local_path(back_to: str | None) -> str:
    """Only a path on this site: never an address elsewhere (no open redirect)."""
    if not back_to or not back_to.startswith("/") or back_to.startswith("//") or "\\" in back_to:
        return "/"
    return back_to


@router.get("/signin")
async def signin_page(request: Request, web: Runtime, next: str | None = None, error: str | None = None) -> Response:
    form_token = secrets.token_urlsafe(32)
    response = page(
        request,
        "signin.html.j2",
        None,
        status=401 if error else 200,
        dev=web.settings.dev,
        departments=list(Department),
        roles=list(Role),
        back_to=local_path(next),
        csrf=form_token,
        error=error,
    )
    _cookie(response, web, SIGNIN_COOKIE, form_token, max_age=3600)
    return response


@router.post("/signin")
async def sign_in(
    request: Request,
    web: Runtime,
    csrf: Annotated[str, Form(max_length=200)],
    back_to: Annotated[str, Form(max_length=2000)] = "/",
    token: Annotated[str, Form(max_length=20_000)] = "",
    department: Annotated[str, Form(max_length=40)] = "",
    role: Annotated[str, Form(max_length=40)] = "",
    user: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    same_origin(request)
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf.encode()):
        raise ForgedForm("the sign-in form's CSRF token does not match")
    try:
        bearer = token.strip() or _dev_token(web, user, department, role)
        actor = await web.verifier.verify_fetching(bearer)
    except (AuthError, ValueError) as error:
        return await signin_page(request, web, next=back_to, error=str(error)[:300])
    session = web.sessions.begin(bearer, actor)
    response = RedirectResponse(local_path(back_to), status_code=303)
    _cookie(response, web, SESSION_COOKIE, session.id, max_age=int(web.settings.session_lifetime.total_seconds()))
    response.delete_cookie(SIGNIN_COOKIE, path="/")
    return response


def _dev_token(web: WebRuntime, user: str, department: str, role: str) -> str:
    """In development only: a token for the department and role picked on the form."""
    if not web.settings.dev:
        raise ValueError("paste a bearer token: picking a department is only for POLICYTRACK_ENV=dev")
    if not user.strip():
        raise ValueError("name the user who signs in")
    return mint_dev_token(user.strip(), Department(department), [Role(role)])


@router.get("/language")
async def choose_language(web: Runtime, to: str = "", back: str = "/") -> Response:
    """The reader's language, remembered for a year; back to the page it was chosen on."""
    response = RedirectResponse(local_path(back), status_code=303)
    if (locale := i18n.parse(to)) is not None:
        _cookie(response, web, LANGUAGE_COOKIE, locale, max_age=365 * 24 * 3600)
    return response


@router.post("/signout")
async def sign_out(
    request: Request, web: Runtime, session: SignedIn, csrf: Annotated[str, Form(max_length=200)]
) -> Response:
    same_origin(request)
    checked(session, csrf)
    web.sessions.end(session.id)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _cookie(response: Response, web: WebRuntime, name: str, value: str, *, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=not web.settings.dev,
    )
