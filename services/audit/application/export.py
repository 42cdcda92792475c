"""The trail as its readers take it away: one NDJSON line per entry (the CloudEvent, or the raw
record when it was not one, with its place in the chain), or CSV of the query columns."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
from collections import deque
from collections.abc import AsyncGenerator
from concurrent.futures.process import BrokenProcessPool
from contextlib import aclosing
from dataclasses import replace
from typing import Any

import orjson
import uvloop

from services.audit.adapters.chaining import decode_headers
from services.audit.adapters.schema import StoredEntry, TrailEntry
from services.audit.adapters.store import AuditStore, EntryFilter
from shared.contract.catalog import SubscriptionCreated
from shared.contract.codec import HEADER_TO_ATTRIBUTE as ATTRIBUTES
from shared.contract.types import redacted_url
from shared.process import processes_apart

SUBSCRIPTION_CREATED = SubscriptionCreated.event_type


def ndjson_line(row: TrailEntry | StoredEntry) -> bytes:
    event: dict[str, Any] | None = None
    if row.decode_error is None:
        event = _attributes(row.headers)
        event["datacontenttype"] = "application/json"
        event["data"] = _readable_data(row)
    return orjson.dumps(
        {
            "seq": row.seq,
            "topic": row.topic,
            "partition": row.partition,
            "offset": row.offset,
            "timestamp": row.timestamp,
            "prev_hash": row.prev_hash,
            "hash": row.hash,
            "event": event,
            "decode_error": row.decode_error,
            "raw": None
            if event is not None
            else {
                # An empty key or value is not none: Kafka keeps the two apart, and so does the trail.
                "key": None if row.key is None else base64.b64encode(row.key).decode(),
                "value": None if row.value is None else base64.b64encode(row.value).decode(),
                "headers": orjson.Fragment(row.headers),
            },
        },
        option=orjson.OPT_APPEND_NEWLINE,
    )


APART_FROM = 100_000
"""Entries from which an NDJSON export is written on both cores: below, the processes' start (the
first time, about a second for their server to import the code) costs more than they save."""
BLOCK = 2_500
"""Sequence numbers a process writes in one job: ~2 MB of lines, ~25 ms of work."""
AHEAD = 3
"""Blocks written ahead of the one being sent: what a slow reader holds here, ~7 MB. Measured
(300,000 entries): the export's peak resident memory 94 MiB against 103-107 with blocks of 5,000
and 124-129 with 10,000 and 4 ahead, and no slower."""


def _every_entry(where: EntryFilter) -> bool:
    """Whether ``where`` takes every entry of its range: a filter's entries (one task's among a
    million) are read faster by one query here than by a query a block in other processes."""
    return replace(where, after_sequence=0, through_sequence=None) == EntryFilter()


async def _ndjson_writer(store: AuditStore, where: EntryFilter, apart_from: int | None) -> AsyncGenerator[bytes, None]:
    """The lines of ``where``, written here or, for every entry of a range of ``apart_from`` or
    more, on both cores (the trail's newest entry asked for only then)."""
    if apart_from is not None and _every_entry(where):
        through = await store.newest() if where.through_sequence is None else where.through_sequence
        if through - where.after_sequence >= apart_from:
            return _ndjson_apart(store, replace(where, through_sequence=through))
    return _ndjson_lines(store, where)


async def _ndjson_lines(store: AuditStore, where: EntryFilter) -> AsyncGenerator[bytes, None]:
    # 500 rows are read in 2-4 ms: the event loop's other work waits no longer than that.
    async for shown in store.stream(TrailEntry, where, chunk=500):
        yield b"".join(map(ndjson_line, shown))


async def _ndjson_apart(store: AuditStore, where: EntryFilter) -> AsyncGenerator[bytes, None]:
    """The lines of ``where``'s range (up to its ``through_sequence``), a block of sequence numbers
    a job, written by two processes and sent in order. If a process dies, the blocks not sent yet
    are written here."""
    assert where.through_sequence is not None
    blocks = deque(
        replace(where, after_sequence=after, through_sequence=min(after + BLOCK, where.through_sequence))
        for after in range(where.after_sequence, where.through_sequence, BLOCK)
    )
    written: deque[tuple[EntryFilter, asyncio.Future[bytes]]] = deque()
    with processes_apart(2, preload=(__name__,), initializer=open_trail, initargs=(store.url,)) as pool:
        try:
            while blocks or written:
                while blocks and len(written) <= AHEAD:
                    written.append((blocks[0], asyncio.wrap_future(pool.submit(ndjson_block, blocks[0]))))
                    blocks.popleft()
                yield await written[0][1]
                written.popleft()
        except BrokenProcessPool:
            blocks.extendleft(reversed([block for block, _ in written]))
        finally:
            # Not cancelled: Python 3.11's pool then fails setting a broken process's jobs'
            # outcome (InvalidStateError in its thread). They end with the processes.
            for _, unsent in written:
                unsent.add_done_callback(_outcome_taken)
    for block in blocks:
        async for lines in _ndjson_lines(store, block):
            yield lines


def _outcome_taken(job: asyncio.Future[bytes]) -> None:
    if not job.cancelled():
        job.exception()


_trail: tuple[asyncio.AbstractEventLoop, AuditStore] | None = None


def open_trail(store_url: str) -> None:
    """A writing process's initializer: the store it reads, and the loop that reads it."""
    global _trail  # a process's initializer is how its jobs get what they share
    _trail = (uvloop.new_event_loop(), AuditStore(store_url))


def ndjson_block(where: EntryFilter) -> bytes:
    """In a process of its own: the lines of the entries in ``where``'s block."""
    assert _trail is not None, "open_trail is the process's initializer"
    loop, store = _trail
    return loop.run_until_complete(_block(store, where))


async def _block(store: AuditStore, where: EntryFilter) -> bytes:
    return b"".join([lines async for lines in _ndjson_lines(store, where)])


def _attributes(stored_headers: bytes) -> dict[str, str]:
    """A decoded entry's CloudEvent attributes: their headers have UTF-8 values (others may have
    any bytes or none)."""
    return {
        ATTRIBUTES[name]: value.decode()
        for name, value in decode_headers(stored_headers)
        if value is not None and name in ATTRIBUTES
    }


def _readable_data(row: Any) -> Any:
    """The event's data as readers get it: a webhook URL recorded in full by an older version
    is shown with its userinfo and query string redacted."""
    if row.event_type != SUBSCRIPTION_CREATED:
        return orjson.Fragment(row.value)
    data = orjson.loads(row.value)
    data["webhook_url"] = redacted_url(str(data.get("webhook_url", "")))
    return data


CSV_COLUMNS = (
    "seq",
    "topic",
    "partition",
    "offset",
    "event_time",
    "event_type",
    "subject",
    "task_id",
    "actor",
    "actordept",
    "event_id",
    "hash",
    "decode_error",
)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _inert(value: object) -> object:
    """A CSV cell that a spreadsheet would run as a formula (text a token's issuer or a hostile
    record chose), written after a ``'`` as OWASP advises; the NDJSON export keeps it as it is."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


async def export(
    store: AuditStore, where: EntryFilter, fmt: str, apart_from: int | None = APART_FROM
) -> AsyncGenerator[bytes, None]:
    """The trail as NDJSON or CSV, streamed a chunk at a time. NDJSON reads only what a line
    shows; CSV is the query columns, so it reads whole entries. An NDJSON export of a range of
    ``apart_from`` entries or more (None: never) and no filter is written by processes of their
    own, up to the entry that was newest when it began."""
    if fmt == "ndjson":
        # Closed with this generator: a reader who stops reading ends the processes now, not
        # when the collector finds the generator.
        async with aclosing(await _ndjson_writer(store, where, apart_from)) as written:
            async for lines in written:
                yield lines
        return
    yield (",".join(CSV_COLUMNS) + "\r\n").encode()
    async for rows in store.stream(StoredEntry, where, chunk=2000):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerows([_inert(getattr(row, column)) for column in CSV_COLUMNS] for row in rows)
        yield buffer.getvalue().encode()
