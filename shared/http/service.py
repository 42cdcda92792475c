"""Builds a service's FastAPI app with what every service has, and serves it with uvicorn."""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Protocol, TypeVar

import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import Actor, AuthError, InsecureConfiguration, TokenVerifier, bearer_token
from shared.http.docs import serve_docs_locally
from shared.http.limits import BodySizeLimit
from shared.http.links import document_links
from shared.http.problems import document_problems, install_problem_handlers
from shared.kafka.connection import MissingCredentials
from shared.logging import configure_logging
from shared.process import leave, run
from shared.settings import ServiceSettings

MAX_BODY_BYTES = 64 * 1024
REQUEST_SECONDS = Histogram(
    "policytrack_http_request_seconds", "HTTP requests by route and status", ["service", "method", "route", "status"]
)


class Runtime(Protocol):
    """What bootstrap wires for a service: started and stopped with the app."""

    verifier: TokenVerifier

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def readiness(self) -> tuple[bool, dict[str, Any]]: ...
    def public_keys(self) -> dict[str, Any]:
        """The service's public keys (and any others it publishes) as a JSON Web Key Set."""
        ...


def create_service_app(
    name: str, runtime: Runtime, *, title: str, description: str, streamed: re.Pattern[str] | None = None
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title=title,
        description=description,
        version="1.0.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    serve_docs_locally(app)
    app.state.runtime = runtime
    app.state.verifier = runtime.verifier
    install_problem_handlers(app)
    document_problems(app)
    document_links(app)

    @app.get("/healthz", tags=["operations"], summary="The process is alive, and which process it is")
    async def healthz() -> dict[str, str | int]:
        # The pid tells whoever started the process that it is this one answering on the port,
        # not another that took the port while it was down.
        return {"status": "ok", "pid": os.getpid()}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Ready: caught up with the log and able to work",
        responses={503: {"description": "Not ready; the body says why"}},
    )
    async def readyz() -> JSONResponse:
        try:
            ready, details = await runtime.readiness()
        except Exception as error:  # e.g. the broker does not answer: not ready, and why
            ready, details = False, {"reason": f"{type(error).__name__}: {error}"[:500]}
        return JSONResponse({"ready": ready, **details}, status_code=200 if ready else 503)

    @app.get(
        "/v1/keys",
        tags=["operations"],
        summary="The service's public keys, as a JWKS: what verifies the records it writes",
        response_class=JSONResponse,
        responses={200: {"content": {"application/jwk-set+json": {"schema": {"type": "object"}}}}},
    )
    async def keys() -> Response:
        return JSONResponse(runtime.public_keys(), media_type="application/jwk-set+json")

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(RequestMetrics, service=name)
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES, streamed=streamed)
    return app


class RequestMetrics:
    """Times every request by route template and status (plain ASGI: no per-request task)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUEST_SECONDS.labels(self.service, scope["method"], route, status).observe(time.perf_counter() - started)


R = TypeVar("R")


def runtime_of(kind: type[R]) -> Callable[[Request], Awaitable[R]]:
    """A dependency that hands routes the runtime ``bootstrap`` wired into ``app.state``.

    A coroutine, as every dependency here is: FastAPI runs a plain function dependency in its
    thread pool, a hop to another thread and back on every request."""

    async def runtime(request: Request) -> R:
        found = request.app.state.runtime
        if not isinstance(found, kind):
            raise TypeError(f"the app's runtime is a {type(found).__name__}, not a {kind.__name__}")
        return found

    return runtime


async def current_actor(request: Request) -> Actor:
    """The caller named by the bearer token; 401 when there is none or it does not verify."""
    token = bearer_token(request.headers.get("authorization", ""))
    if token is None:
        raise AuthError("a bearer token is required")
    verifier: TokenVerifier = request.app.state.verifier
    return await verifier.verify_fetching(token)


Authenticated = Annotated[Actor, Depends(current_actor)]


async def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Serve until SIGTERM/SIGINT; uvicorn then drains requests and runs the app's shutdown."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    await uvicorn.Server(config).serve()


def run_service(
    name: str, settings: ServiceSettings, bootstrap: Callable[[Any], Any], create_app: Callable[[Any], FastAPI]
) -> int:
    """A service's ``python -m`` entry: configure, wire (refusing unsafe settings), serve."""
    configure_logging(settings.runtime, service=name)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_with_handlers)
    try:
        runtime = bootstrap(settings)
    except (InsecureConfiguration, MissingCredentials, FileNotFoundError, ValueError) as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 2
    run(serve(create_app(runtime), settings))
    return 0


def _exit_with_handlers(signum: int, _frame: object) -> None:
    """Ends a service asked to stop: uvicorn drains its requests, runs the shutdown, then raises
    the signal again with the handler it found, this one. Ended by the signal itself, the
    process ran no exit handlers, and the audit service left its process server's folder in
    the temporary folder at every stop."""
    leave(128 + signum)
