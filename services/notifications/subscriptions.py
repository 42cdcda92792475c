"""Webhook subscriptions: what a department asked to be told, where, and with which secret."""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import secrets
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator

from shared.contract import catalog as c
from shared.contract.catalog import CATALOG, TYPE_PREFIX
from shared.contract.codes import Department
from shared.contract.types import AggregateId, redacted_url

DELIVERABLE = frozenset(t for t, cls in CATALOG.items() if issubclass(cls, c.DeadlineAlert))
"""Alerts that go to subscribers; delivery receipts themselves do not."""


def full_type(name: str) -> str:
    return name if name.startswith(TYPE_PREFIX) else f"{TYPE_PREFIX}{name}.v1"


class SubscriptionBody(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    department: Department | None = None
    task_id: AggregateId | None = None
    event_types: tuple[str, ...] = Field(default=(), max_length=20)
    webhook_url: HttpUrl
    secret: str | None = Field(default=None, description="whsec_<base64>; generated when not given")

    @field_validator("event_types")
    @classmethod
    def _known_alert_types(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in names if full_type(name) not in DELIVERABLE]
        if unknown:
            raise ValueError(f"not alert types: {', '.join(unknown)}; one of {', '.join(sorted(DELIVERABLE))}")
        return tuple(sorted({full_type(name) for name in names}))

    @field_validator("secret")
    @classmethod
    def _standard_webhooks_secret(cls, secret: str | None) -> str | None:
        if secret is None:
            return None
        try:
            raw = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if not secret.startswith("whsec_") or not 24 <= len(raw) <= 64:
            raise ValueError("must be whsec_ followed by base64 of 24 to 64 random bytes")
        return secret


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True, slots=True)
class Subscription:
    subscription_id: str
    department: Department | None
    task_id: str | None
    event_types: frozenset[str]
    webhook_url: str
    secret: str
    created_at: datetime
    created_by: str

    def wants(self, alert: c.DeadlineAlert, at: datetime) -> bool:
        if alert.event_type not in DELIVERABLE or at < self.created_at:
            return False
        if self.event_types and alert.event_type not in self.event_types:
            return False
        if self.task_id is not None and alert.task_id != self.task_id:
            return False
        return self.department is None or self.department in alert.departments or (
            getattr(alert, "escalated_to", None) == self.department
        )

    def public(self) -> dict[str, object]:
        return {"id": self.subscription_id, "department": self.department, "task_id": self.task_id,
                "event_types": sorted(self.event_types), "webhook_url": redacted_url(self.webhook_url),
                "created_at": self.created_at.isoformat(), "created_by": self.created_by}  # fmt: skip


class Sealer:
    """Seals webhook secrets before they go on the log (events are kept forever)."""

    def __init__(self, key: str | bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def unseal(self, sealed: str) -> str | None:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return None


@dataclass(frozen=True)
class AddressPolicy:
    dev: bool
    allow_private: bool
    allowed_hosts: frozenset[str]
    _recent: dict[str, tuple[float, str | None]] = field(default_factory=dict, compare=False)

    async def checked(self, url: str, ttl: float = 60.0) -> str | None:
        """``refusal`` off the event loop (it resolves names), remembered for ``ttl`` seconds."""
        cached = self._recent.get(url)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        refusal = await asyncio.to_thread(self.refusal, url)
        self._recent[url] = (time.monotonic() + ttl, refusal)
        return refusal

    def refusal(self, url: str) -> str | None:
        """Why a webhook URL may not be called, or None. Checked at subscription and delivery."""
        parsed = HttpUrl(url)
        if parsed.scheme not in ("http", "https"):
            return "only http and https webhooks"
        host = parsed.host or ""
        if host in self.allowed_hosts:
            return None
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(host, parsed.port, proto=socket.IPPROTO_TCP)}
        except socket.gaierror:
            return f"{host} does not resolve"
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%")[0])
            if ip.is_loopback and (self.dev or self.allow_private):
                continue
            if (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast
                    or ip.is_unspecified) and not self.allow_private:  # fmt: skip
                return f"{host} resolves to {ip}, a loopback or private address"
        return None
