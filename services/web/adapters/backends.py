"""The three services as the dashboard calls them: server-side, with the signed-in user's
token, so each page holds exactly what that user may see."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, Literal

import httpx

Service = Literal["tasks", "notifications", "audit"]
MAX_PAGES = 200


class BackendRefused(Exception):
    """A service answered with an error; ``status`` and ``detail`` say which and why."""

    def __init__(self, service: str, status: int, detail: str, problem: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{service} answered {status}: {detail}")
        self.service = service
        self.status = status
        self.detail = detail
        self.problem = dict(problem or {})

    def field_errors(self) -> dict[str, str]:
        """The problem's ``errors``, by field (the first message of each)."""
        errors: dict[str, str] = {}
        for error in self.problem.get("errors") or ():
            if isinstance(error, Mapping) and "field" in error:
                errors.setdefault(str(error["field"]).split(".")[0], str(error.get("message", "")))
        return errors


class BackendDown(Exception):
    """A service did not answer at all."""


class Backends:
    def __init__(
        self,
        urls: Mapping[Service, str],
        timeout: float = 30,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        stream_timeout: float = 60,
    ) -> None:
        self.urls = dict(urls)
        self._stream_timeout = stream_timeout
        """How long a relayed stream may send nothing (the alert stream's keep-alives come every 15 s)."""
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=5),
            follow_redirects=False,
            transport=transport,
            cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),
        )
        """One client for everyone signed in: it keeps no cookie a service (or a proxy before it)
        sets, which would go out with the next person's requests."""

    async def close(self) -> None:
        await self._client.aclose()

    async def get(self, service: Service, path: str, token: str, params: Mapping[str, Any] | None = None) -> Any:
        response = await self._send("GET", service, path, token, params=params)
        return response.json()

    async def post(self, service: Service, path: str, token: str, body: Any) -> Any:
        return (await self._send("POST", service, path, token, json=body)).json()

    async def delete(self, service: Service, path: str, token: str) -> None:
        await self._send("DELETE", service, path, token)

    async def unsigned(self, service: Service, path: str) -> httpx.Response:
        """A GET that carries no token (a calendar feed's secret address is its own credential);
        the answer as it came, refusals included."""
        try:
            return await self._client.get(f"{self.urls[service]}{path}")
        except httpx.HTTPError as error:
            raise BackendDown(f"{service}: {type(error).__name__}") from error

    async def command(self, path: str, token: str, body: Any, *, if_match: int | None, idempotency_key: str) -> Any:
        """A command to the tasks service as the signed-in person: the version the form was
        filled against (If-Match) and the form's own key, so a second click records nothing more."""
        headers = {"Idempotency-Key": idempotency_key, **({"If-Match": f'"{if_match}"'} if if_match else {})}
        return (await self._send("POST", "tasks", path, token, json=body, extra_headers=headers)).json()

    async def upload(self, token: str, name: str, media_type: str, content: AsyncIterator[bytes]) -> Any:
        """A file to the tasks service as evidence, streamed; what it kept (name, type, size, hash)."""
        headers = {"Content-Type": media_type}
        return (
            await self._send(
                "POST", "tasks", "/v1/evidence", token, extra_headers=headers, params={"name": name}, content=content
            )
        ).json()

    async def every(
        self, service: Service, path: str, token: str, params: Mapping[str, Any], *, limit: int
    ) -> list[Any]:
        """Every item of a paged list (``items`` and ``next_cursor``), up to ``MAX_PAGES`` pages."""
        items: list[Any] = []
        cursor = None
        for _ in range(MAX_PAGES):
            page = await self.get(
                service, path, token, {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
            )
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return items

    async def alive(self, service: Service) -> bool:
        try:
            return (await self._client.get(f"{self.urls[service]}/healthz", timeout=2)).status_code == 200
        except httpx.HTTPError:
            return False

    @asynccontextmanager
    async def stream(
        self,
        service: Service,
        path: str,
        token: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """The response, open, for passing on as it arrives (alerts, exports)."""
        request = self._client.build_request(
            "GET",
            f"{self.urls[service]}{path}",
            params=params,
            headers={**(headers or {}), "Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(self._stream_timeout, connect=5),
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as error:
            raise BackendDown(f"{service}: {type(error).__name__}") from error
        try:
            if response.status_code >= 400:
                await response.aread()
                raise BackendRefused(service, response.status_code, _detail(response))
            yield response
        finally:
            await response.aclose()

    async def _send(
        self,
        method: str,
        service: Service,
        path: str,
        token: str,
        extra_headers: Mapping[str, str] | None = None,
        **options: Any,
    ) -> httpx.Response:
        headers = {**(extra_headers or {}), "Authorization": f"Bearer {token}"}
        try:
            response = await self._client.request(method, f"{self.urls[service]}{path}", headers=headers, **options)
        except httpx.HTTPError as error:
            raise BackendDown(f"{service}: {type(error).__name__}") from error
        if response.status_code >= 400:
            raise BackendRefused(service, response.status_code, _detail(response), _problem(response))
        return response


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _detail(response: httpx.Response) -> str:
    return str(_problem(response).get("detail", response.text))[:500]
