"""What the audit service works out from the trail: a task as of any moment (replayed with the
tasks service's own ``evolve``), the responsibility report, and the NDRC's implementation report."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import orjson
from jinja2 import Environment, PackageLoader

from services.audit.adapters.chaining import event_of
from services.audit.adapters.schema import StoredEntry
from services.audit.adapters.store import AuditStore, EntryFilter
from services.audit.domain import accounts
from services.audit.domain.implementation import LISTED, Replay, implementation_report
from shared.auth import Actor, can_read_everything
from shared.bounds import Held
from shared.contract.catalog import IssueEscalated
from shared.contract.envelope import AnyEvent, CloudEvent
from shared.domain.evolve import DOMAIN_TYPES, EvolveError
from shared.domain.projection import Projection
from shared.domain.state import Task


async def domain_events(store: AuditStore, where: EntryFilter) -> AsyncIterator[tuple[Any, AnyEvent]]:
    """The stored domain events that match, in log order, with their entries."""
    async for rows in store.stream(StoredEntry, where):
        for row in rows:
            if row.event_type in DOMAIN_TYPES and isinstance(event := event_of(row), CloudEvent):
                yield row, event


def fold(projection: Projection, event: AnyEvent) -> bool:
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


async def replay(store: AuditStore, until: datetime, since: datetime | None = None) -> Replay:
    """The trail's domain events up to ``until`` folded, with the acts per department, the
    escalations per task, and what the report lists of ``[since, until]``."""
    folded = Replay()
    async for row, event in domain_events(store, EntryFilter(until=until)):
        _fold_act(folded, row, event)
        if since is not None and since <= event.time and isinstance(event.data, LISTED):
            folded.in_period.append(event)
    return folded


def _fold_act(folded: Replay, row: Any, event: AnyEvent) -> None:
    if row.actordept:
        folded.acts[row.actordept] += 1
    if fold(folded.projection, event) and isinstance(event.data, IssueEscalated):
        folded.escalations[event.data.task_id] += 1


class RunningReplay:
    """The whole stored trail folded once and kept: a report up to now folds only the entries
    stored since the one before. A report that ends before an event already folded is replayed
    from the start, as before."""

    def __init__(self, store: AuditStore) -> None:
        self._store = store
        self._folded = Replay()
        self._through = 0
        self._latest: datetime | None = None
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def up_to(self, until: datetime, since: datetime | None = None) -> AsyncIterator[Replay]:
        """What ``replay(store, until, since)`` gives, held unchanged until the block ends."""
        async with self._lock:
            head = await self._store.stored_head()
            where = EntryFilter(after_sequence=self._through, through_sequence=head)
            async for row, event in domain_events(self._store, where):
                _fold_act(self._folded, row, event)
                if isinstance(event.data, LISTED):
                    self._folded.in_period.append(event)
                self._latest = event.time if self._latest is None else max(self._latest, event.time)
            self._through = head
            if self._latest is not None and self._latest > until:
                yield await replay(self._store, until, since)
                return
            listed = [e for e in self._folded.in_period if since is not None and since <= e.time]
            yield Replay(self._folded.projection, self._folded.acts, self._folded.escalations, listed)


def canonical_report(report: dict[str, Any]) -> bytes:
    """The report's bytes as hashed: sorted keys, no spaces."""
    return orjson.dumps(report, option=orjson.OPT_SORT_KEYS)


def digest(report: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_report(report)).hexdigest()


def _inert(value: object) -> object:
    """Every value the report shows is text someone could have written (a title, a reason, a
    token's subject): each is made inert as it is written out, numbers left as they are."""
    return as_markdown_text(value) if isinstance(value, str) else value


_TEMPLATES = Environment(
    loader=PackageLoader("services.audit"), autoescape=False, keep_trailing_newline=True, finalize=_inert
)


def as_markdown_text(text: object) -> str:
    """Text someone wrote, kept on its line and in its table cell, and inert as Markdown: it
    cannot start a heading, a list or a table row, link, or smuggle in HTML."""
    flat = " ".join(str(text or "").split())
    return _MARKDOWN_SPECIALS.sub(
        lambda match: "\\" + match.group(0), flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    )


# Not "-" or "+": a value never starts a line (line breaks are flattened), so they cannot start
# a list, and dates keep their hyphens.
_MARKDOWN_SPECIALS = re.compile(r"[\\`*_{}\[\]()#!|~]")


def markdown(report: dict[str, Any]) -> str:
    """The same report as a document a person reads, with the same numbers."""
    return _TEMPLATES.get_template("implementation.md.j2").render(report=report)


def visibility(actor: Actor) -> str | None:
    """None: sees everything; otherwise the department whose tasks bound what it sees."""
    return None if can_read_everything(actor) else str(actor.department)


class Reports:
    """The reports, from the running fold of the trail: implementation reports kept by period
    and trail head (asked again before the trail has grown, a report is not built again). At
    most ``building``'s bound are built at once, per user and for everyone together (429 over it)."""

    KEPT = 16

    def __init__(self, store: AuditStore, building: Held) -> None:
        self._store, self._building = store, building
        self._running = RunningReplay(store)
        self._kept: OrderedDict[tuple[datetime, datetime, int], dict[str, Any]] = OrderedDict()

    async def implementation(self, user: str, period_from: datetime, period_to: datetime) -> dict[str, Any]:
        """The NDRC's report on ``[period_from, period_to]``, from the trail alone."""
        key = (period_from, period_to, await self._store.stored_head())
        if (report := self._kept.get(key)) is not None:
            self._kept.move_to_end(key)
            return report
        with self._building.holding(user):
            async with self._running.up_to(period_to, period_from) as folded:
                report = implementation_report(folded, period_from, period_to)
        self._kept[key] = report
        while len(self._kept) > self.KEPT:
            self._kept.popitem(last=False)
        return report

    async def responsibility(self, user: str, now: datetime) -> dict[str, dict[str, int]]:
        """Per department: what it was assigned, what it did, what is late, at risk or
        escalated, and how it answered support requests."""
        with self._building.holding(user):
            async with self._running.up_to(now) as folded:
                return accounts.responsibility(folded.projection, folded.acts, folded.escalations, now)
