"""Subscriptions, by webhook or by mail: what a department or a person asked to be told and
where, and the rules of who may subscribe and unsubscribe. Pure: the edge draws ids, seals
secrets and addresses, and vets webhook hosts.

Subscriptions are writes (events on the log): auditors, who read everything, never make one;
a department subscribes for itself; a subscription is removed by whoever made it, by its own
department, or by an administrator."""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, HttpUrl, field_validator

from shared.contract import catalog as c
from shared.contract.catalog import CATALOG, full_type
from shared.contract.codes import Department, Role
from shared.contract.types import AggregateId, redacted_url
from shared.domain.access import Actor, can_read, can_read_everything, can_write
from shared.domain.refusals import Forbidden

DELIVERABLE = frozenset(t for t, cls in CATALOG.items() if issubclass(cls, c.NOTICES))
"""Alerts that go to subscribers; delivery receipts themselves do not."""


class Audience(BaseModel):
    """What a subscription is to: a department's alerts (by default the subscriber's own), of
    one task, of some alert types."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    department: Department | None = None
    task_id: AggregateId | None = None
    event_types: tuple[str, ...] = Field(default=(), max_length=20)

    @field_validator("event_types")
    @classmethod
    def _known_alert_types(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in names if full_type(name) not in DELIVERABLE]
        if unknown:
            raise ValueError(f"not alert types: {', '.join(unknown)[:500]}; one of {', '.join(sorted(DELIVERABLE))}")
        return tuple(sorted({full_type(name) for name in names}))


class SubscriptionBody(Audience):
    webhook_url: HttpUrl = Field(max_length=2000)
    secret: str | None = Field(default=None, description="whsec_<base64>; generated when not given")

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


class MailSubscriptionBody(Audience):
    address: EmailStr = Field(max_length=254)
    recipient: Literal["department", "me"] = Field(
        default="department", description="the department's mailbox, or the subscriber's own"
    )
    language: Literal["zh-CN", "en", "ko"] = "zh-CN"
    digest: bool = Field(default=True, description="also a daily digest of what is due, late or awaiting an answer")


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def masked_address(address: str) -> str:
    """An address as the trail shows it: the first letter of the mailbox, then the domain."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    secret: str


@dataclass(frozen=True, slots=True)
class Mailbox:
    address: str
    language: str
    digest: bool
    person: str | None = None
    """Whose own mailbox it is; None: the department's."""


@dataclass(frozen=True, slots=True)
class Subscription:
    subscription_id: str
    department: Department | None
    task_id: str | None
    event_types: frozenset[str]
    endpoint: Webhook | Mailbox
    created_at: datetime
    created_by: str
    created_by_department: Department | None = None

    def wants(self, alert: c.Notice, at: datetime) -> bool:
        if alert.event_type not in DELIVERABLE or at < self.created_at:
            return False
        if isinstance(alert, c.DailyDigest):
            # a digest is made for its mail readers: no webhook gets one unless it asked by name
            digest_wanted = isinstance(self.endpoint, Mailbox) and self.endpoint.digest
            if not (digest_wanted or alert.event_type in self.event_types):
                return False
            return self.department is None or self.department == alert.department
        if self.event_types and alert.event_type not in self.event_types:
            return False
        if self.task_id is not None and getattr(alert, "task_id", None) != self.task_id:
            return False
        return (
            self.department is None
            or self.department in alert.departments
            or (getattr(alert, "escalated_to", None) == self.department)
        )

    def public(self) -> dict[str, object]:
        common: dict[str, object] = {
            "id": self.subscription_id,
            "department": self.department,
            "task_id": self.task_id,
            "event_types": sorted(self.event_types),
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }
        if isinstance(self.endpoint, Webhook):
            return {**common, "channel": "webhook", "webhook_url": redacted_url(self.endpoint.url)}
        mailbox = self.endpoint
        return {
            **common,
            "channel": "mail",
            "address": mailbox.address,
            "recipient": "me" if mailbox.person else "department",
            "language": mailbox.language,
            "digest": mailbox.digest,
        }


@dataclass(frozen=True)
class Sealed:
    """What the edge made of the request before the rules see it: ids and sealed secrets."""

    subscription_id: str
    sealed_endpoint: str
    """The webhook URL or the mail address, sealed."""
    sealed_secret: str = ""


def audience_department(
    body: Audience, actor: Actor, task_departments: tuple[Department, ...] | None
) -> Department | None:
    """The department whose alerts a subscription gets, once the actor may subscribe to them.
    ``task_departments``: the lead and supporting departments of ``body.task_id``, None when
    no such task is known."""
    if not can_write(actor):
        raise Forbidden("auditors read alerts; they do not subscribe (a subscription is a write)")
    department = body.department
    if department not in (None, actor.department) and not actor.has(Role.ADMIN):
        raise Forbidden(f"{actor.department} may subscribe only to its own alerts", "department")
    if not can_read_everything(actor):
        department = actor.department
        if body.task_id is not None and (task_departments is None or not can_read(actor, task_departments)):
            raise Forbidden(f"{actor.department} neither leads nor supports task {body.task_id}", "task_id")
    return department


def subscribe(
    body: SubscriptionBody, actor: Actor, task_departments: tuple[Department, ...] | None, sealed: Sealed
) -> c.SubscriptionCreated:
    return c.SubscriptionCreated(
        subscription_id=sealed.subscription_id,
        department=audience_department(body, actor, task_departments),
        task_id=body.task_id,
        event_types=body.event_types,
        webhook_url=HttpUrl(redacted_url(str(body.webhook_url))),
        sealed_webhook_url=sealed.sealed_endpoint,
        sealed_secret=sealed.sealed_secret,
    )


def subscribe_mail(
    body: MailSubscriptionBody, actor: Actor, task_departments: tuple[Department, ...] | None, sealed: Sealed
) -> c.MailSubscriptionCreated:
    """A person's own mailbox gets the alerts of
    the person's department."""
    department = audience_department(body, actor, task_departments)
    return c.MailSubscriptionCreated(
        subscription_id=sealed.subscription_id,
        department=actor.department if body.recipient == "me" else department,
        task_id=body.task_id,
        event_types=body.event_types,
        person=actor.user if body.recipient == "me" else None,
        address=masked_address(str(body.address)),
        sealed_address=sealed.sealed_endpoint,
        language=body.language,
        digest=body.digest,
    )


def may_see(subscription: Subscription, actor: Actor) -> bool:
    owner = subscription.department or subscription.created_by_department
    return can_read_everything(actor) or owner == actor.department or subscription.created_by == actor.user


def unsubscribe(subscription: Subscription, actor: Actor) -> c.SubscriptionRemoved:
    owner = subscription.department or subscription.created_by_department
    own_department = owner is not None and owner == actor.department
    if not can_write(actor) or not (subscription.created_by == actor.user or own_department or actor.has(Role.ADMIN)):
        raise Forbidden(
            f"only whoever made subscription {subscription.subscription_id}, its department or an "
            "administrator removes it"
        )
    return c.SubscriptionRemoved(subscription_id=subscription.subscription_id)
