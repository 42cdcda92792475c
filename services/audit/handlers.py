"""What the audit service answers from the trail: replay of tasks, the responsibility report
and export. Ingestion, checkpoints and verification have modules of their own."""

from __future__ import annotations

import base64
import csv
import io
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import orjson

from services.audit.store import AuditStore, EntryFilter, event_of
from shared.auth import Actor, reads_everything
from shared.contract.catalog import IssueEscalated, SubscriptionCreated
from shared.contract.codes import Department
from shared.contract.envelope import CloudEvent
from shared.contract.types import redacted_url
from shared.domain.evolve import DOMAIN_TYPES, EvolveError, Projection
from shared.domain.state import Task

SUBSCRIPTION_CREATED = SubscriptionCreated.event_type


# --- replay, responsibility, export ---------------------------------------------------------------


async def domain_events(store: AuditStore, where: EntryFilter) -> AsyncIterator[tuple[Any, CloudEvent]]:
    """The stored domain events that match, in log order, with their entries."""
    async for rows in store.stream(where):
        for row in rows:
            if row.event_type in DOMAIN_TYPES and isinstance(event := event_of(row), CloudEvent):
                yield row, event


def fold(projection: Projection, event: CloudEvent) -> bool:
    """``projection.apply``, passing over an event that does not fit (the trail keeps it)."""
    try:
        return projection.apply(event)
    except (EvolveError, ValueError, TypeError):
        return False


async def replay_task(store: AuditStore, task_id: str, as_of: datetime | None) -> Task | None:
    """The task as it stood at ``as_of``, folded with the same ``evolve`` as the tasks service."""
    projection = Projection()
    async for _, event in domain_events(store, EntryFilter(task_id=task_id, until=as_of)):
        fold(projection, event)
    return projection.task(task_id)


async def responsibility(store: AuditStore, now: datetime) -> dict[str, dict[str, int]]:
    """Per department: what it was assigned (lead, supporting), what it did, what is late and
    what was escalated."""
    projection = Projection()
    acts: Counter[str] = Counter()
    escalated_tasks: Counter[str] = Counter()
    async for row, event in domain_events(store, EntryFilter()):
        if row.actordept:
            acts[row.actordept] += 1
        if fold(projection, event) and isinstance(event.data, IssueEscalated):
            escalated_tasks[event.data.task_id] += 1
    table = {str(d): {"lead": 0, "supporting": 0, "acts": acts.get(str(d), 0), "late": 0, "escalated": 0}
             for d in Department}  # fmt: skip
    for task in projection.tasks():
        departments = [task.lead_department, *task.supporting_departments]
        if task.lead_department:
            table[str(task.lead_department)]["lead"] += 1
        for department in task.supporting_departments:
            table[str(department)]["supporting"] += 1
        for department in filter(None, departments):
            table[str(department)]["late"] += int(task.is_overdue(now))
            table[str(department)]["escalated"] += escalated_tasks.get(task.task_id, 0)
    return table


def visibility(actor: Actor) -> str | None:
    """None: sees everything; otherwise the department whose tasks bound what it sees."""
    return None if reads_everything(actor) else str(actor.department)


def ndjson_line(row: Any) -> bytes:
    event: Any = None
    if row.decode_error is None:
        attributes = {name.removeprefix("ce_"): base64.b64decode(value).decode()
                      for name, value in orjson.loads(row.headers) if name.startswith("ce_")}  # fmt: skip
        event = {**attributes, "datacontenttype": "application/json", "data": _readable_data(row)}
    return orjson.dumps({
        "seq": row.seq, "topic": row.topic, "partition": row.partition, "offset": row.offset,
        "timestamp": row.timestamp, "prev_hash": row.prev_hash, "hash": row.hash, "event": event,
        "decode_error": row.decode_error,
        "raw": None if event is not None else {
            "key": row.key and base64.b64encode(row.key).decode(),
            "value": row.value and base64.b64encode(row.value).decode(),
            "headers": orjson.Fragment(row.headers)},
    }) + b"\n"  # fmt: skip


def _readable_data(row: Any) -> Any:
    """The event's data as readers get it: a webhook URL recorded in full by an older version
    is shown with its userinfo and query string redacted."""
    if row.event_type != SUBSCRIPTION_CREATED:
        return orjson.Fragment(row.value)
    data = orjson.loads(row.value)
    data["webhook_url"] = redacted_url(str(data.get("webhook_url", "")))
    return data


CSV_COLUMNS = ("seq", "topic", "partition", "offset", "event_time", "event_type", "subject", "task_id", "actor",
               "actordept", "event_id", "hash", "decode_error")  # fmt: skip


async def export(store: AuditStore, where: EntryFilter, fmt: str) -> AsyncIterator[bytes]:
    """The trail as NDJSON or CSV, streamed a chunk at a time."""
    if fmt == "csv":
        yield (",".join(CSV_COLUMNS) + "\r\n").encode()
    async for rows in store.stream(where, chunk=2000):
        if fmt == "ndjson":
            yield b"".join(map(ndjson_line, rows))
        else:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerows([getattr(row, column) for column in CSV_COLUMNS] for row in rows)
            yield buffer.getvalue().encode()
