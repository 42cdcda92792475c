"""Constrained value types shared by event payloads and request bodies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints


def _to_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A moment with an explicit offset on input, kept in UTC."""

AggregateId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Text = Annotated[str, StringConstraints(max_length=20_000)]
Percent = Annotated[int, Field(ge=0, le=100)]


def redacted_url(url: str) -> str:
    """A URL as readers may see it: userinfo and query string can carry credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = ("redacted@" if parts.username or parts.password else "") + host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "redacted" if parts.query else "", ""))
