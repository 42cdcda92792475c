"""A page of the trail holds exactly the entries its filter names, whichever filters are
combined: the statements are made once per set of filters and reused with new values."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from services.audit.adapters.chaining import chained
from services.audit.adapters.schema import StoredEntry, TrailEntry, task_access
from services.audit.adapters.store import AuditStore, EntryFilter
from services.audit.domain.chain import LogRecord
from shared.contract.catalog import TaskAssigned, TaskProgressReported
from shared.contract.codec import encode
from shared.contract.codes import Department
from shared.contract.envelope import AnyEvent, new_event

START = datetime(2026, 12, 1, tzinfo=UTC)
PROGRESS = TaskProgressReported.event_type
ASSIGNED = TaskAssigned.event_type


def trail() -> list[AnyEvent]:
    """Two tasks, each assigned to its lead and supporters, then reported on by two officials
    of different departments an hour apart."""
    events: list[AnyEvent] = [
        new_event(
            TaskAssigned(task_id="task-1", lead_department=Department.JILIN),
            actor="u-ndrc",
            actordept=Department.NDRC,
            time=START,
        ),
        new_event(
            TaskAssigned(
                task_id="task-2", lead_department=Department.MOFCOM, supporting_departments=(Department.MOST,)
            ),
            actor="u-ndrc",
            actordept=Department.NDRC,
            time=START,
        ),
    ]
    for n in range(12):
        task, (actor, department) = (
            f"task-{n % 2 + 1}",
            [("u-jilin", Department.JILIN), ("u-most", Department.MOST)][n % 3 % 2],
        )
        events.append(
            new_event(
                TaskProgressReported(task_id=task, percent=n * 5, note=f"report {n}"),
                actor=actor,
                actordept=department,
                time=START + timedelta(hours=n),
            )
        )
    return events


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AuditStore]:
    store = AuditStore(f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")
    await store.open()
    encoded = [encode(event) for event in trail()]
    records = [
        LogRecord.kept(e.topic, 0, n, 1_700_000_000_000 + n, e.key, e.value, e.headers) for n, e in enumerate(encoded)
    ]
    try:
        await store.write(chained(records, store.head))
        yield store
    finally:
        await store.close()


FILTERS = [
    EntryFilter(),
    EntryFilter(after_sequence=5),
    EntryFilter(after_sequence=3, through_sequence=9),
    EntryFilter(task_id="task-1"),
    EntryFilter(actor="u-most"),
    EntryFilter(department="JILIN", after_sequence=4),
    EntryFilter(event_types=(ASSIGNED,)),
    EntryFilter(event_types=(ASSIGNED, PROGRESS), task_id="task-2"),
    EntryFilter(since=START + timedelta(hours=3), until=START + timedelta(hours=7)),
    EntryFilter(since=START + timedelta(hours=10)),
    EntryFilter(visible_to_department="MOST"),
    EntryFilter(visible_to_department="JILIN", actor="u-most", event_types=(PROGRESS,)),
    EntryFilter(visible_to_department="NAO"),
    EntryFilter(task_id="task-1", actor="u-jilin", department="JILIN", until=START + timedelta(hours=6)),
]


def matches(entry: StoredEntry, where: EntryFilter, seen_by: set[str]) -> bool:
    """What the filter means, said over the stored columns."""
    time = datetime.fromisoformat(entry.event_time) if entry.event_time else None
    return (
        entry.seq > where.after_sequence
        and (where.through_sequence is None or entry.seq <= where.through_sequence)
        and (where.task_id is None or entry.task_id == where.task_id)
        and (where.actor is None or entry.actor == where.actor)
        and (where.department is None or entry.actordept == where.department)
        and (where.event_id is None or entry.event_id == where.event_id)
        and (where.event_types is None or entry.event_type in where.event_types)
        and (where.since is None or (time is not None and time >= where.since))
        and (where.until is None or (time is not None and time <= where.until))
        and (where.visible_to_department is None or entry.task_id in seen_by)
    )


async def test_every_filter_and_combination_pages_exactly_its_entries(store: AuditStore) -> None:
    everything, _ = await store.page(StoredEntry, EntryFilter(), 1000)
    assert len(everything) == len(trail())
    async with store.engine.connect() as connection:
        access = {(task, department) for task, department in await connection.execute(select(task_access))}
    for where in [*FILTERS, *FILTERS]:  # the second time through, each statement is the one kept
        seen_by = {task for task, department in access if department == where.visible_to_department}
        expected = [entry.seq for entry in everything if matches(entry, where, seen_by)]
        assert expected or where.visible_to_department == "NAO", where
        paged, more = await store.page(TrailEntry, where, 1000)
        assert [entry.seq for entry in paged] == expected, where
        assert not more
        if len(expected) > 2:
            first, more = await store.page(TrailEntry, where, 2)
            assert ([entry.seq for entry in first], more) == (expected[:2], True), where


async def test_an_event_is_found_by_its_id(store: AuditStore) -> None:
    everything, _ = await store.page(StoredEntry, EntryFilter(), 1000)
    wanted = everything[5]
    found, _ = await store.page(StoredEntry, EntryFilter(event_id=wanted.event_id), 1)
    assert found == [wanted]
