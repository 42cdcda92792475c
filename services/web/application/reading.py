"""What the dashboard reads from the services that own it, with the signed-in user's token:
the tasks they may see, and the events of the trail, folded by the shared codec and projection."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from services.web.adapters.backends import Backends
from services.web.domain.overview import ISSUE_AND_APPROVAL_TYPES, Overview, overview
from shared.contract.codec import from_document
from shared.contract.envelope import AnyEvent, CloudEvent
from shared.domain.state import Task
from shared.retrying import TRAIL_CATCHING_UP, RetryPolicy


async def visible_tasks(backends: Backends, token: str) -> list[Task]:
    """Every task the signed-in person may see."""
    items = await backends.every("tasks", "/v1/tasks", token, {}, limit=500)
    return [Task.model_validate(item) for item in items]


def events_of(entries: Iterable[Mapping[str, Any]]) -> Iterator[AnyEvent]:
    """The events of trail entries, read by the one codec (an entry that holds none is passed over)."""
    for entry in entries:
        if entry.get("event") and isinstance(event := from_document(entry["event"]), CloudEvent):
            yield event


async def trail_entries(backends: Backends, token: str, **filters: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = await backends.every("audit", "/v1/audit/events", token, filters, limit=1000)
    return entries


class _TrailBehind(Exception):
    """The trail does not hold the task's version yet."""


def holds_version(entries: Iterable[Mapping[str, Any]], task_id: str, version: int) -> bool:
    """Whether the trail entries hold the task as of ``version`` (or later)."""
    return any(event.subject == task_id and (event.aggregateversion or 0) >= version for event in events_of(entries))


async def task_trail_through(
    backends: Backends, token: str, task_id: str, version: int, patience: RetryPolicy = TRAIL_CATCHING_UP
) -> list[dict[str, Any]]:
    """A task's trail entries once they hold ``version``, the version the tasks service answered
    with; as they stand if the trail has not caught up within ``patience``."""
    entries: list[dict[str, Any]] = []
    try:
        async for attempt in patience.on(_TrailBehind):
            with attempt:
                entries = await trail_entries(backends, token, task_id=task_id)
                if not holds_version(entries, task_id, version):
                    raise _TrailBehind
    except _TrailBehind:
        pass
    return entries


async def overview_for(backends: Backends, token: str, now: datetime) -> tuple[list[Task], Overview]:
    """The tasks the signed-in person may see, and their overview with open issues and approvals."""
    tasks, *by_type = await asyncio.gather(
        visible_tasks(backends, token), *(trail_entries(backends, token, type=t) for t in ISSUE_AND_APPROVAL_TYPES)
    )
    entries = sorted((e for found in by_type for e in found), key=lambda e: e["seq"])
    return tasks, overview(tasks, events_of(entries), now)
