"""Constrained value types shared by event payloads and request bodies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, get_args
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
"""The calendar the system computes with: far enough either way for a plan's deadlines and
their alerts, and nowhere near the edges where adding a lead time or converting a zone
overflows."""


def _to_utc(moment: datetime) -> datetime:
    # The year is checked before converting: at the edges of the calendar the conversion
    # itself overflows. One conversion, compared with the bounds: this runs for every event read.
    if not EARLIEST.year <= moment.year <= LATEST.year:
        raise ValueError(OUTSIDE_THE_CALENDAR)
    utc = moment.astimezone(UTC)
    if not EARLIEST <= utc <= LATEST:
        raise ValueError(OUTSIDE_THE_CALENDAR)
    return utc


OUTSIDE_THE_CALENDAR = "must be between 2000-01-01T00:00:00Z and 2200-12-31T23:59:59Z"


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A moment with an explicit offset on input, kept in UTC, within the system's calendar."""

AGGREGATE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
AggregateId = Annotated[str, StringConstraints(pattern=AGGREGATE_ID_PATTERN)]
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


EvidenceType = Literal[
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
]
"""What evidence may be: PDF, images and office documents (each checked against its content)."""
EVIDENCE_TYPES: tuple[str, ...] = get_args(EvidenceType)
SHA256_PATTERN = r"^[0-9a-f]{64}$"
Sha256 = Annotated[str, StringConstraints(pattern=SHA256_PATTERN)]
FileName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x1f]+$")
]
