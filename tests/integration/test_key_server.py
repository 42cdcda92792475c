"""The identity provider's key server as the services meet it (issue 28, item 1): slow, down,
or asked for key ids it never issued. A real HTTP server on 127.0.0.1 stands in for it; the
service side is the ``current_actor`` dependency every route uses, in process."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from shared.auth import AuthSettings, TokenVerifier
from shared.http.problems import install_problem_handlers
from shared.http.service import Authenticated
from shared.keyset import KeySetPolicy
from tests.conftest import http_server
from tests.unit.test_tokens import ISSUER, PROD, RSA_KEY, jwks, sign


@dataclass
class KeyServer:
    """Serves ``document`` after ``delay`` seconds (or ``status``); counts requests and knows
    whether one is being answered right now."""

    document: str = field(default_factory=lambda: jwks(("k-1", RSA_KEY, "RS256")))
    delay: float = 0.0
    status: int = 200
    requests: int = 0
    answering: threading.Event = field(default_factory=threading.Event)
    url: str = ""


@pytest.fixture
def key_server() -> Iterator[KeyServer]:
    served = KeyServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.requests += 1
            served.answering.set()
            try:
                threading.Event().wait(served.delay)
                body = served.document.encode() if served.status == 200 else b"{}"
                self.send_response(served.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            finally:
                served.answering.clear()

        def log_message(self, *args: object) -> None:
            pass

    with http_server(Handler) as server:
        served.url = f"http://127.0.0.1:{server.server_port}/jwks.json"
        yield served


def service(key_server: KeyServer, **policy: float) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.verifier = TokenVerifier(
        AuthSettings(issuer=ISSUER, jwks_url=key_server.url, jwks_fetch=KeySetPolicy(**policy)), PROD
    )

    @app.get("/whoami")
    async def whoami(actor: Authenticated) -> dict[str, str]:
        return {"user": actor.user}

    return app


@pytest.fixture
async def client_of() -> AsyncIterator[list[httpx.AsyncClient]]:
    made: list[httpx.AsyncClient] = []
    yield made
    for client in made:
        await client.aclose()


def client(app: FastAPI, made: list[httpx.AsyncClient]) -> httpx.AsyncClient:
    made.append(httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service"))
    return made[-1]


def bearer(kid: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {sign(RSA_KEY, 'RS256', kid=kid)}"}


async def test_a_slow_key_server_never_holds_up_the_event_loop(
    key_server: KeyServer, client_of: list[httpx.AsyncClient]
) -> None:
    """The fetch used to run synchronously inside the async dependency: while the key server
    took its time, nothing else on the loop ran."""
    key_server.delay = 1.5
    app = service(key_server)
    request = asyncio.create_task(client(app, client_of).get("/whoami", headers=bearer(f"made-up-{uuid.uuid4()}")))
    ran_while_the_server_was_answering = False
    while not request.done():
        ran_while_the_server_was_answering |= key_server.answering.is_set()
        await asyncio.sleep(0.01)
    assert (await request).status_code == 401
    assert ran_while_the_server_was_answering, "the loop stood still while the key server answered"


async def test_made_up_key_ids_cost_one_fetch_and_a_down_server_is_left_alone(
    key_server: KeyServer, client_of: list[httpx.AsyncClient]
) -> None:
    app = service(key_server)
    http = client(app, client_of)
    assert (await http.get("/whoami", headers=bearer("k-1"))).json() == {"user": "u-ndrc"}
    for _ in range(20):
        assert (await http.get("/whoami", headers=bearer(f"made-up-{uuid.uuid4()}"))).status_code == 401
    assert key_server.requests == 1, "a fresh copy refuses an unknown key id without fetching"

    key_server.status = 503
    down = service(key_server)
    requests_before = key_server.requests
    for _ in range(20):
        assert (await client(down, client_of).get("/whoami", headers=bearer("k-1"))).status_code == 401
    assert key_server.requests - requests_before == 1, "after a failed fetch, the cooldown holds"


async def test_concurrent_requests_share_one_fetch(key_server: KeyServer, client_of: list[httpx.AsyncClient]) -> None:
    key_server.delay = 0.3
    app = service(key_server)
    http = client(app, client_of)
    answers = await asyncio.gather(*(http.get("/whoami", headers=bearer("k-1")) for _ in range(10)))
    assert [a.status_code for a in answers] == [200] * 10
    assert key_server.requests == 1


async def test_a_key_published_later_is_found_once_the_copy_is_no_longer_fresh(
    key_server: KeyServer, client_of: list[httpx.AsyncClient]
) -> None:
    app = service(key_server, fresh_seconds=0)
    http = client(app, client_of)
    assert (await http.get("/whoami", headers=bearer("k-1"))).status_code == 200
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_server.document = jwks(("k-1", RSA_KEY, "RS256"), ("k-2", new_key, "RS256"))
    token = sign(new_key, "RS256", kid="k-2")
    assert (await http.get("/whoami", headers={"Authorization": f"Bearer {token}"})).json() == {"user": "u-ndrc"}
    assert key_server.requests == 2
