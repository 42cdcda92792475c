"""The CloudEvents 1.0 envelope every event travels in, with policytrack's extension attributes."""

from __future__ import annotations

import os
import time as clock
import uuid
from datetime import UTC, datetime
from typing import Any, Generic, Literal, Self, TypeGuard, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, model_validator

from shared.contract.catalog import NOTICES, EventData, Notice
from shared.contract.codes import Department
from shared.contract.types import UtcDatetime

SPECVERSION = "1.0"
JSON = "application/json"


D_co = TypeVar("D_co", bound=EventData, covariant=True)


class CloudEvent(BaseModel, Generic[D_co]):
    """One event. ``type`` and ``subject`` always agree with ``data``; ``actor`` comes from a token.
    Generic over its data: a ``CloudEvent[DeadlineAlert]`` has an ``alert_id`` in its data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=200)
    type: str = Field(max_length=200)
    time: UtcDatetime
    subject: str = Field(max_length=200)
    datacontenttype: Literal["application/json"] = "application/json"
    actor: str = Field(min_length=1, max_length=200, description="user id of whoever caused the event, from the token")
    actordept: Department | None = Field(default=None, description="the actor's department, from the token")
    aggregateversion: int | None = Field(default=None, ge=1, le=2**62, description="version of the aggregate after it")
    correlationid: str | None = Field(default=None, max_length=200)
    causationid: str | None = Field(default=None, max_length=200)
    idempotencykey: str | None = Field(default=None, max_length=255, description="the client's Idempotency-Key, if any")
    requestdigest: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 of the request (method, path, body) the Idempotency-Key was first sent with",
    )
    signedcommand: str | None = Field(
        default=None,
        max_length=300_000,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="the department's signature of the command that caused the event, with what it signed "
        "(base64url JSON: scheme, kid, signed, signature, body), so anyone can check it with the department's key",
    )
    data: SerializeAsAny[D_co]

    @model_validator(mode="after")
    def _agrees_with_data(self) -> Self:
        if self.type != self.data.event_type:
            raise ValueError(f"type {self.type!r} does not match data of type {self.data.event_type!r}")
        if self.subject != self.data.subject:
            raise ValueError(f"subject {self.subject!r} does not match the data's aggregate {self.data.subject!r}")
        return self

    @property
    def topic(self) -> str:
        return self.data.topic


AnyEvent = CloudEvent[EventData]
"""An event of any type, as read from the log."""
E = TypeVar("E", bound=EventData)


def is_of(event: CloudEvent[Any], kind: type[E]) -> TypeGuard[CloudEvent[E]]:
    """Narrows an event to one whose data is a ``kind``."""
    return isinstance(event.data, kind)


def is_notice(event: CloudEvent[Any]) -> TypeGuard[CloudEvent[Notice]]:
    """Narrows an event to an alert that subscribers are told."""
    return isinstance(event.data, NOTICES)


def new_event(
    data: E,
    *,
    actor: str,
    actordept: Department | None = None,
    aggregateversion: int | None = None,
    correlationid: str | None = None,
    causationid: str | None = None,
    idempotencykey: str | None = None,
    requestdigest: str | None = None,
    signedcommand: str | None = None,
    id: str | None = None,
    time: datetime | None = None,
) -> CloudEvent[E]:
    """Wrap ``data`` in an envelope; the id is a new time-ordered one unless the caller derives one."""
    event_id = id or str(time_ordered_id())
    return CloudEvent(
        id=event_id,
        source=data.source,
        type=data.event_type,
        time=time or datetime.now(UTC),
        subject=data.subject,
        actor=actor,
        actordept=actordept,
        aggregateversion=aggregateversion,
        correlationid=correlationid or event_id,
        causationid=causationid,
        idempotencykey=idempotencykey,
        requestdigest=requestdigest,
        signedcommand=signedcommand,
        data=data,
    )


def time_ordered_id() -> uuid.UUID:
    """A UUID version 7 (RFC 9562, section 5.7): the Unix time in milliseconds, then 74 random
    bits. Ids made later sort later, so the audit trail's index of event ids grows at its end
    instead of at random pages (bench.audit_store: the insert of an entry 1.3-1.6x faster)."""
    value = (clock.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10))
    value = value & ~(0xF << 76) | 0x7 << 76  # the version
    return uuid.UUID(int=value & ~(0x3 << 62) | 0x2 << 62)  # the RFC's variant
