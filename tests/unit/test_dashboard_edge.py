"""The dashboard's edge in process, the three services answered by a stand-in: sign-in, the
session cookie's flags, CSRF and same-origin checks on every post, the page headers, and that
the bearer token never reaches the page. The browser test runs the same against the real system."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Literal

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from services.web.adapters.backends import Backends
from services.web.adapters.sessions import Sessions
from services.web.bootstrap import WebRuntime
from services.web.entrypoints.app import create_app
from services.web.settings import WebSettings
from shared.auth import AuthSettings, TokenVerifier
from shared.bounds import Bound
from shared.clock import Clock, utc_now
from shared.settings import RuntimeSettings

NOW = datetime.now(UTC)
TASK = {
    "version": 3,
    "created_at": (NOW - timedelta(days=30)).isoformat(),
    "updated_at": NOW.isoformat(),
    "task_id": "task-hydrogen",
    "plan_id": "plan-1",
    "title": "Hydrogen vehicle cluster",
    "field": "industry",
    "due": (NOW + timedelta(days=300)).isoformat(),
    "created_by": "u-sc",
    "lead_department": "JILIN",
    "percent": 40,
}


def services(request: httpx.Request) -> httpx.Response:
    """What the tasks and audit services would answer, enough for the pages."""
    path = request.url.path
    if path == "/v1/tasks":
        return httpx.Response(200, json={"items": [TASK], "next_cursor": None})
    if path == "/v1/audit/events":
        return httpx.Response(200, json={"items": [], "next_cursor": None})
    if path == "/v1/audit/reports/implementation":
        return httpx.Response(403, json={"status": 403, "detail": "the implementation report is the NDRC's"})
    return httpx.Response(404, json={"status": 404, "detail": "no such thing"})


def web_app(
    env: Literal["dev", "test", "prod"] = "dev",
    auth: AuthSettings | None = None,
    answer: Callable[[httpx.Request], httpx.Response] = services,
    clock: Clock = utc_now,
) -> httpx.AsyncClient:
    """The dashboard in process, the three services answered by ``answer``."""
    settings = WebSettings(runtime=RuntimeSettings(env=env), auth=auth or AuthSettings())
    runtime = WebRuntime(
        settings=settings,
        verifier=TokenVerifier(settings.auth, settings.runtime),
        sessions=Sessions(timedelta(hours=1), Bound(per_user=10, in_all=100)),
        backends=Backends(
            {"tasks": "http://tasks", "notifications": "http://notifications", "audit": "http://audit"},
            transport=httpx.MockTransport(answer),
        ),
        clock=clock,
    )
    transport = httpx.ASGITransport(app=create_app(runtime))
    # Outside development the cookies are Secure: the browser sends them back only over TLS.
    scheme = "http" if env == "dev" else "https"
    return httpx.AsyncClient(transport=transport, base_url=f"{scheme}://127.0.0.1:8000")


def form_token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, "the form carries no CSRF token"
    return found.group(1)


@pytest.fixture
async def dashboard() -> AsyncIterator[httpx.AsyncClient]:
    async with web_app() as client:
        yield client


async def sign_in(client: httpx.AsyncClient, department: str = "NDRC", role: str = "supervisor") -> httpx.Response:
    page = await client.get("/signin")
    return await client.post(
        "/signin",
        data={"csrf": form_token(page), "user": "u-ndrc", "department": department, "role": role, "back_to": "/"},
    )


async def test_a_page_without_a_session_sends_the_browser_to_sign_in_and_back(dashboard: httpx.AsyncClient) -> None:
    answer = await dashboard.get("/tasks/task-hydrogen?as_of=2026-01-01")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/signin?next=%2Ftasks%2Ftask-hydrogen%3Fas_of%3D2026-01-01"


async def test_the_session_is_an_httponly_strict_cookie_and_the_token_never_reaches_the_page(
    dashboard: httpx.AsyncClient,
) -> None:
    signed_in = await sign_in(dashboard)
    assert signed_in.status_code == 303, signed_in.text
    cookie = signed_in.headers["set-cookie"]
    assert "policytrack_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    overview = await dashboard.get("/")
    assert overview.status_code == 200
    assert "Hydrogen vehicle cluster" in overview.text and "u-ndrc" in overview.text
    # A JWT's shape, header and claims each base64url JSON: a random CSRF token may hold "eyJ".
    assert re.search(r"eyJ[\w-]*\.eyJ[\w-]*\.", overview.text) is None, "a JWT is on the page"
    csp = overview.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp


async def test_a_post_without_the_sessions_csrf_token_or_from_another_site_is_refused(
    dashboard: httpx.AsyncClient,
) -> None:
    await sign_in(dashboard)
    page = await dashboard.get("/")
    assert (await dashboard.post("/signout", data={"csrf": "guessed"})).status_code == 403
    elsewhere = await dashboard.post(
        "/signout", data={"csrf": form_token(page)}, headers={"Origin": "https://evil.example"}
    )
    assert elsewhere.status_code == 403
    assert (await dashboard.get("/")).status_code == 200, "a refused sign-out signed the user out"
    assert (await dashboard.post("/signout", data={"csrf": form_token(page)})).status_code == 303
    assert (await dashboard.get("/")).status_code == 303


async def test_the_sign_in_form_needs_its_own_token(dashboard: httpx.AsyncClient) -> None:
    await dashboard.get("/signin")
    forged = await dashboard.post("/signin", data={"csrf": "x", "user": "u", "department": "NDRC", "role": "admin"})
    assert forged.status_code == 403
    assert "policytrack_session" not in forged.headers.get("set-cookie", "")


async def test_what_a_service_refuses_the_page_refuses_with_its_reason(dashboard: httpx.AsyncClient) -> None:
    await sign_in(dashboard, "JILIN", "implementer")
    report = await dashboard.get("/report")
    assert report.status_code == 403
    assert "the implementation report is the NDRC&#39;s" in report.text


async def test_outside_development_only_a_pasted_token_signs_in() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    auth = AuthSettings(public_keys=[public], issuer="https://idp.example", algorithms=["ES256"])
    async with web_app("prod", auth) as client:
        picked = await sign_in(client)
        assert picked.status_code == 401 and "paste a bearer token" in picked.text
        claims = {
            "sub": "u-ndrc",
            "dept": "NDRC",
            "roles": ["supervisor"],
            "iss": "https://idp.example",
            "aud": "policytrack",
            "exp": int((NOW + timedelta(hours=1)).timestamp()),
        }
        page = await client.get("/signin")
        assert 'id="dev-signin"' not in page.text
        pasted = await client.post(
            "/signin", data={"csrf": form_token(page), "token": jwt.encode(claims, key, algorithm="ES256")}
        )
        assert pasted.status_code == 303
        assert "Secure" in pasted.headers["set-cookie"]


async def test_the_pages_tell_late_by_the_systems_clock_not_the_machines() -> None:
    """A deployment on a simulated clock (the demonstration plays two years in minutes): what is
    late on the dashboard is late on that clock, as it is for the services."""
    milestone = {"milestone_id": "m-1", "title": "Hydrogen stations", "due": (NOW + timedelta(days=10)).isoformat()}
    task = {**TASK, "milestones": [milestone]}

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/tasks":
            return httpx.Response(200, json={"items": [task], "next_cursor": None})
        return services(request)

    for clock, late in ((utc_now, False), (lambda: NOW + timedelta(days=30), True)):
        async with web_app(answer=answer, clock=clock) as client:
            await sign_in(client)
            page = await client.get("/")
        assert page.status_code == 200
        assert ("Hydrogen stations" in page.text) is late, f"late={late}"
