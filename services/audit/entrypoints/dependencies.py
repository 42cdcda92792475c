"""What routes depend on: the runtime ``bootstrap`` wired into ``app.state``, and the filters
that querying and exporting share, bounded by what the caller may see."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request

from services.audit.adapters.store import AuditStore, EntryFilter
from services.audit.application.reports import visibility
from services.audit.bootstrap import AuditRuntime
from shared.auth import Actor
from shared.contract.catalog import CATALOG, SUPERSEDED, TYPE_PREFIX, full_type, versions_of
from shared.contract.codes import Department
from shared.contract.types import AGGREGATE_ID_PATTERN, UtcDatetime
from shared.http.problems import Problem
from shared.http.service import Authenticated, runtime_of

runtime = runtime_of(AuditRuntime)


async def store(request: Request) -> AuditStore:
    return (await runtime(request)).store


Store = Annotated[AuditStore, Depends(store)]
Runtime = Annotated[AuditRuntime, Depends(runtime)]
TaskIdPath = Annotated[str, Path(pattern=AGGREGATE_ID_PATTERN, max_length=128, examples=["task-5f0c2a9e1b3d4c6a"])]
EventIdPath = Annotated[str, Path(min_length=1, max_length=200, examples=["9f0c2a9e-1b3d-4c6a-8e2f-0a1b2c3d4e5f"])]
Moment = Annotated[UtcDatetime | None, Query(description="RFC 3339 with an offset, 2000-01-01 to 2200-12-31")]


async def trail_filter(
    actor: Authenticated,
    task_id: Annotated[str | None, Query(pattern=AGGREGATE_ID_PATTERN, max_length=128)] = None,
    actor_id: Annotated[str | None, Query(alias="actor", min_length=1, max_length=200)] = None,
    department: Department | None = None,
    type: Annotated[str | None, Query(max_length=200, examples=["task.progress_reported"])] = None,
    since: Moment = None,
    until: Moment = None,
) -> EntryFilter:
    """The filters that querying and exporting share, bounded by what the caller may see."""
    return EntryFilter(
        task_id=task_id,
        actor=actor_id,
        department=department and str(department),
        event_types=_event_types(type),
        since=since,
        until=until,
        visible_to_department=visibility(actor),
    )


TrailFilter = Annotated[EntryFilter, Depends(trail_filter)]


def _event_types(name: str | None) -> tuple[str, ...] | None:
    """A type named in full is that version; named as people say it, every version of it."""
    if name is None:
        return None
    full = full_type(name)
    if full not in CATALOG and full not in SUPERSEDED:
        raise Problem(422, f"unknown event type {name[:100]!r}", field="type")
    return (full,) if name.startswith(TYPE_PREFIX) else versions_of(full)


def everything(actor: Actor) -> None:
    if visibility(actor) is not None:
        raise Problem(403, "verification and the responsibility report are for auditors, supervisors and admins")
