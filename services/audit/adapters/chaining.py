"""Records of the log made into chained entries: each entry's hash over the one before, its
Merkle leaf, the columns it is queried by. CPU only, so that the next batch is chained while the
database writes this one."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson

from services.audit.adapters.schema import StoredEntry
from services.audit.domain.chain import LogRecord, canonical, chain_hash, headers_json
from shared.contract.catalog import TaskAssigned, TaskReassigned
from shared.contract.codec import DecodeFailure, decode
from shared.contract.envelope import AnyEvent
from shared.transparency.merkle import Frontier

ASSIGNING_TYPES = (TaskAssigned.event_type, TaskReassigned.event_type)


def iso(moment: datetime) -> str:
    """A fixed-width UTC form whose text order is time order (SQLite compares text)."""
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    # isoformat, not strftime: a third of the cost on every ingested record, and it pads the year.
    return utc.isoformat(timespec="microseconds")[:-6] + "Z"


_IN_ISO_FORM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
"""A moment written as ``iso`` writes it, as our writers write every event's time."""


def iso_of_written(written: str, moment: datetime) -> str:
    """``iso(moment)`` of an event whose time was ``written``: the text itself when it is in that
    form already (a sixth of the cost)."""
    return written if _IN_ISO_FORM.fullmatch(written) else iso(moment)


_AS_STORED = msgspec.json.Decoder(tuple[tuple[str, bytes | None], ...])
"""The headers' stored form read in C, its base64 values decoded with it."""


def decode_headers(raw: bytes) -> tuple[tuple[str, bytes | None], ...]:
    """The headers an entry keeps, from their stored form (``headers_json``)."""
    try:
        return _AS_STORED.decode(raw)
    except msgspec.DecodeError:
        # Not as ingest writes it (a row changed in the store): read as leniently as ever, so
        # that what a check finds in it does not change.
        return tuple((name, None if value is None else base64.b64decode(value)) for name, value in orjson.loads(raw))


def log_record(row: StoredEntry, *, with_headers: bool = True) -> LogRecord:
    """The record an entry keeps; without headers when the caller uses the stored form."""
    headers = decode_headers(row.headers) if with_headers else ()
    return LogRecord(row.topic, row.partition, row.offset, row.timestamp, row.key, row.value, headers)


def event_of(row: StoredEntry) -> AnyEvent | DecodeFailure:
    return decode(row.key, row.value, decode_headers(row.headers))


@dataclass(frozen=True)
class Head:
    sequence: int
    hash: str
    tree: Frontier = field(default_factory=Frontier)
    """The Merkle tree of the entries up to ``sequence``, as its perfect subtrees."""


DERIVED = ("event_id", "event_type", "subject", "task_id", "actor", "actordept", "event_time", "decode_error")
_UNDECODED = dict.fromkeys(DERIVED)


def derive(record: LogRecord) -> dict[str, Any]:
    """The columns an entry derives from its record, for querying; verification recomputes them."""
    decoded = decode(record.key, record.value, record.headers)
    if isinstance(decoded, DecodeFailure):
        return {**_UNDECODED, "decode_error": decoded.reason}
    # A record that decodes has each attribute's header once, in UTF-8.
    written: dict[str, Any] = dict(record.headers)
    return {
        "event_id": decoded.id,
        # The type the record was written as (an earlier version stays that version in the trail).
        "event_type": written["ce_type"].decode(),
        "subject": decoded.subject,
        "task_id": getattr(decoded.data, "task_id", None),
        "actor": decoded.actor,
        "actordept": decoded.actordept and str(decoded.actordept),
        "event_time": iso_of_written(written["ce_time"].decode(), decoded.time),
        "decode_error": None,
        "_event": decoded,
    }


def _entry_row(
    sequence: int, record: LogRecord, stored_headers: bytes, previous: str, digest: str, access: set[tuple[str, str]]
) -> dict[str, Any]:
    derived = derive(record)
    decoded = derived.pop("_event", None)
    if decoded is not None and decoded.type in ASSIGNING_TYPES:
        data = decoded.data
        access.update((data.task_id, str(d)) for d in (data.lead_department, *data.supporting_departments))
    return {
        "seq": sequence,
        **_as_kept(record, stored_headers),
        "prev_hash": previous,
        "hash": digest,
        **derived,
    }


def _as_kept(record: LogRecord, stored_headers: bytes) -> dict[str, Any]:
    """The record as a row keeps it, byte for byte: where it is on the log, and what it holds."""
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": record.key,
        "value": record.value,
        "headers": stored_headers,
    }


@dataclass(frozen=True)
class ChainedBatch:
    """Records chained onto a head and made into rows, ready to be written in one transaction."""

    after: Head
    head: Head
    rows: list[dict[str, Any]]
    next_offsets: dict[tuple[str, int], int]
    access: set[tuple[str, str]]
    refused: list[dict[str, Any]] = field(default_factory=list)
    """Records refused for their writer's proof: stored apart, not chained."""
    nodes: list[tuple[int, int, bytes]] = field(default_factory=list)
    """The Merkle tree's nodes the batch completes: (level, index, hash)."""


def refused_row(record: LogRecord, reason: str, detected_at: datetime) -> dict[str, Any]:
    return {
        **_as_kept(record, headers_json(record.headers)),
        "reason": reason[:4000],
        "detected_at": iso(detected_at),
        "reported": False,
    }


def chained(
    records: Sequence[LogRecord],
    after: Head,
    refusals: Sequence[tuple[LogRecord, str]] = (),
    detected_at: datetime | None = None,
) -> ChainedBatch:
    """The rows of ``records`` chained onto ``after``, and the rows of the records refused for
    their writer's proof: CPU only, so the next batch can be chained while the database writes
    this one. The partitions' offsets move past both."""
    sequence, previous, frontier = after.sequence, after.hash, after.tree
    rows: list[dict[str, Any]] = []
    nodes: list[tuple[int, int, bytes]] = []
    access: set[tuple[str, str]] = set()
    next_offsets: dict[tuple[str, int], int] = {}
    for record in records:
        sequence += 1
        stored_headers = headers_json(record.headers)
        leaf = canonical(record, stored_headers)
        digest = chain_hash(previous, leaf)
        frontier = frontier.append(leaf, nodes)
        rows.append(_entry_row(sequence, record, stored_headers, previous, digest, access))
        next_offsets[(record.topic, record.partition)] = record.offset + 1
        previous = digest
    kept_apart = [refused_row(record, reason, detected_at or datetime.now(UTC)) for record, reason in refusals]
    for record, _ in refusals:
        where = (record.topic, record.partition)
        next_offsets[where] = max(next_offsets.get(where, 0), record.offset + 1)
    return ChainedBatch(after, Head(sequence, previous, frontier), rows, next_offsets, access, kept_apart, nodes)
