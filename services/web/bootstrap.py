"""Wires the web dashboard: settings -> token verifier, sessions, the three services' clients."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.web.adapters.backends import Backends
from services.web.adapters.sessions import Sessions
from services.web.settings import WebSettings
from shared.auth import TokenVerifier
from shared.clock import Clock, utc_now


@dataclass
class WebRuntime:
    settings: WebSettings
    verifier: TokenVerifier
    sessions: Sessions
    backends: Backends
    clock: Clock = utc_now
    """What "now" is on the pages: the deployment's clock, as the services read it."""

    async def start(self) -> None:
        """Nothing to start: the dashboard keeps no state but its sessions."""

    async def stop(self) -> None:
        await self.backends.close()

    def public_keys(self) -> dict[str, Any]:
        """The dashboard writes no record and signs nothing: it has no keys to publish."""
        return {"keys": []}

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready when the three services answer; each page needs one or more of them."""
        alive = {name: await self.backends.alive(name) for name in ("tasks", "notifications", "audit")}
        return all(alive.values()), {"services": alive, "sessions": len(self.sessions)}


def bootstrap(settings: WebSettings | None = None) -> WebRuntime:
    settings = settings or WebSettings()
    return WebRuntime(
        settings=settings,
        verifier=TokenVerifier(settings.auth, settings.runtime),
        sessions=Sessions(settings.session_lifetime, settings.sessions),
        backends=Backends(
            {"tasks": settings.tasks_url, "notifications": settings.notifications_url, "audit": settings.audit_url},
            stream_timeout=settings.stream_timeout_seconds,
        ),
        clock=settings.runtime.clock(),
    )
