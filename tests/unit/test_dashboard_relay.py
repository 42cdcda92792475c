"""The dashboard's relay of a stream (issue 28, item 3): an upstream that stops sending held the
relay, and the connection to the service, for as long as it stayed open. Now a stream that sends
nothing for the relay's timeout ends, cleanly, and the browser reconnects where it left off."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import httpx
import pytest

from services.web.adapters.backends import Backends
from services.web.entrypoints.streams import relayed
from tests.conftest import http_server

FIRST = b"id: 1\nevent: alert\ndata: {}\n\n"


@pytest.fixture
def stalled_stream() -> Iterator[tuple[str, threading.Event]]:
    """An alert stream that sends one event and then nothing, until it is let go."""
    let_go = threading.Event()

    class Stalling(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(FIRST)
            self.wfile.flush()
            let_go.wait(30)

        def log_message(self, format: str, *args: object) -> None:
            pass

    with http_server(Stalling) as server:
        try:
            yield f"http://127.0.0.1:{server.server_port}", let_go
        finally:
            let_go.set()


async def test_a_stream_that_sends_nothing_for_the_timeout_ends(stalled_stream: tuple[str, threading.Event]) -> None:
    url, _ = stalled_stream
    backends = Backends({"notifications": url}, stream_timeout=0.5)
    try:
        response = await relayed(
            backends.stream("notifications", "/v1/alerts/stream", "token"), media_type="text/event-stream", headers={}
        )
        began, chunks = time.monotonic(), []
        async for chunk in response.body_iterator:
            chunks.append(chunk)
        waited = time.monotonic() - began
    finally:
        await backends.close()
    assert b"".join(c.encode() if isinstance(c, str) else bytes(c) for c in chunks) == FIRST
    assert waited < 20, f"the relay held a silent stream for {waited:.1f} s"


async def test_what_a_service_sets_for_one_person_never_goes_out_with_another_s_request() -> None:
    """The dashboard calls the services for everyone signed in through one client: a cookie a
    service (or a proxy before it) sets in answer to one person is not kept for the next."""
    sent: list[str | None] = []

    def service(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("cookie"))
        return httpx.Response(200, json={}, headers={"Set-Cookie": "route=node-1; Path=/"})

    backends = Backends({"tasks": "http://tasks.test"}, transport=httpx.MockTransport(service))
    try:
        await backends.get("tasks", "/v1/tasks/t-1", "alice's token")
        await backends.get("tasks", "/v1/tasks/t-1", "bob's token")
    finally:
        await backends.close()
    assert sent == [None, None]
