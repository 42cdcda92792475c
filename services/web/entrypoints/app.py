"""The web dashboard's app: the shared service edge, the pages, sign-in, and the static files
(our own stylesheet and script; nothing from another host)."""

from __future__ import annotations

from importlib import resources
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from services.web.adapters.backends import BackendDown, BackendRefused
from services.web.adapters.sessions import Session
from services.web.bootstrap import WebRuntime
from services.web.entrypoints import exports, imports, pages, reminders, session, streams
from services.web.entrypoints.acts import FORMS_WITH_FILES
from services.web.entrypoints.rendering import page
from services.web.entrypoints.session import ForgedForm, SignInNeeded, signed_in
from shared.http.service import create_service_app

DESCRIPTION = """The dashboard of policytrack for the people who supervise the plan: pages
rendered on the server from the tasks, notifications and audit services, read with the
signed-in user's token. These operations are its own; the pages are for browsers."""


def create_app(runtime: WebRuntime) -> FastAPI:
    app = create_service_app(
        "web", runtime, title="policytrack web dashboard", description=DESCRIPTION, streamed=FORMS_WITH_FILES
    )
    app.mount("/static", StaticFiles(directory=str(resources.files("services.web") / "static")), name="static")
    app.include_router(session.router)
    app.include_router(pages.router)
    app.include_router(streams.router)
    app.include_router(exports.router)
    app.include_router(imports.router)
    app.include_router(reminders.router)
    _explain_failures(app)
    return app


def _explain_failures(app: FastAPI) -> None:
    @app.exception_handler(SignInNeeded)
    async def sign_in_first(request: Request, error: SignInNeeded) -> Response:
        return RedirectResponse(f"/signin?next={_quoted(error.back_to)}", status_code=303)

    @app.exception_handler(ForgedForm)
    async def forged(request: Request, error: ForgedForm) -> Response:
        return page(request, "refused.html.j2", await _session(request), status=403, detail=str(error))

    @app.exception_handler(BackendRefused)
    async def refused(request: Request, error: BackendRefused) -> Response:
        status = error.status if error.status in (403, 404, 422) else 502
        return page(request, "refused.html.j2", await _session(request), status=status, detail=error.detail)

    @app.exception_handler(BackendDown)
    async def down(request: Request, error: BackendDown) -> Response:
        return page(request, "refused.html.j2", await _session(request), status=503, detail=f"not answering: {error}")


async def _session(request: Request) -> Session | None:
    try:
        return await signed_in(request, request.app.state.runtime)
    except SignInNeeded:
        return None


def _quoted(path: str) -> str:
    return quote(path, safe="")
