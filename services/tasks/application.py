"""What the tasks service does with a command, whichever edge it came in by: check it against
the state rebuilt from the log, evolve its events, append them, and answer.

Per aggregate, commands are decided one after another; the state they are decided against
is only changed once their events are on the log. An Idempotency-Key returns the first
answer to a retry of the same request, refuses the same key for a different request, and
refuses it while the first request is in flight.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from services.tasks.adapters.event_log import EventLog
from services.tasks.adapters.idempotency import IdempotencyIndex
from services.tasks.answers import Answer, KeyInFlight, KeyReused, StaleVersion, answer_for
from services.tasks.domain import commands as cmd
from services.tasks.domain.assessments import evaluation_due, health_change
from services.tasks.domain.decide import decide
from services.tasks.view import LogView
from shared.auth import Actor
from shared.clock import Clock, utc_now
from shared.contract.catalog import CommandRejected, EventData, FieldError
from shared.contract.codes import Department
from shared.contract.envelope import AnyEvent, new_event
from shared.domain.projection import Projection


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


@dataclass(frozen=True)
class IdempotencyKey:
    key: str
    digest: str
    """The request's fingerprint (``adapters.idempotency.fingerprint``)."""


@dataclass(frozen=True)
class Author:
    """Whom an event names as its actor: the token's user, or the system itself."""

    user: str
    department: Department | None


SYSTEM = Author("policytrack-tasks", None)


class KeyedLocks:
    """One asyncio lock per key, alive only while someone holds or awaits it."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[Hashable, asyncio.Lock] = weakref.WeakValueDictionary()

    def __call__(self, key: Hashable) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock


class TaskService:
    def __init__(self, log: EventLog, view: LogView, clock: Clock = utc_now) -> None:
        self.log = log
        self.view = view
        self.clock = clock
        self.month: timedelta | None = None
        """A month's length for evaluation cycles, in demonstrations only; calendar months otherwise."""
        self._locks = KeyedLocks()

    @property
    def projection(self) -> Projection:
        return self.view.projection

    @property
    def index(self) -> IdempotencyIndex:
        return self.view.index

    async def execute(
        self,
        command: cmd.Command,
        actor: Actor,
        *,
        if_match: int | None = None,
        idempotency: IdempotencyKey | None = None,
        correlation_id: str | None = None,
    ) -> Answer:
        """Decide and append. Refused, StaleVersion, KeyReused, KeyInFlight, Fenced and
        LogUnavailable append nothing."""
        if idempotency is None:
            return await self._execute(command, actor, if_match, None, correlation_id)
        remembered = self.index.get(actor.user, idempotency.key)
        if remembered is not None:
            if remembered.digest is not None and remembered.digest != idempotency.digest:
                raise KeyReused()
            return remembered.answer
        if not self.index.begin(actor.user, idempotency.key):
            raise KeyInFlight()
        try:
            return await self._execute(command, actor, if_match, idempotency, correlation_id)
        finally:
            self.index.end(actor.user, idempotency.key)

    async def _execute(
        self,
        command: cmd.Command,
        actor: Actor,
        if_match: int | None,
        idempotency: IdempotencyKey | None,
        correlation_id: str | None,
    ) -> Answer:
        aggregate_id = getattr(command, command.target or command.creates or "", None) or "-"
        async with self._locks(aggregate_id):
            if if_match is not None and command.target is not None:
                current = self.projection.aggregates.get(aggregate_id)
                if current is not None and current.version != if_match:
                    raise StaleVersion(if_match, current.version)
            decided = decide(command, actor, self.projection)
            events = self._envelope(decided, Author(actor.user, actor.department), idempotency, correlation_id)
            await self._append(events)
        return answer_for(events)

    async def _append(self, events: list[AnyEvent]) -> None:
        states = self.projection.preview(events)  # an event that cannot be applied is never appended
        await self.log.append(events, partial(self.view.adopt, events, states))

    async def assess(self) -> int:
        """What the system records as time passes: each task's health when it changes, each
        plan's evaluation when it falls due. Returns how many events that took."""
        now = self.clock()
        recorded = 0
        for task in self.projection.tasks():
            recorded += await self._as_system(task.task_id, partial(self._health, task.task_id, now))
        for plan in self.projection.plans():
            recorded += await self._as_system(plan.plan_id, partial(self._evaluation, plan.plan_id, now))
        return recorded

    def _health(self, task_id: str, now: datetime) -> list[EventData]:
        task = self.projection.task(task_id)
        return health_change(task, now) if task is not None else []

    def _evaluation(self, plan_id: str, now: datetime) -> list[EventData]:
        plan = self.projection.plan(plan_id)
        return evaluation_due(plan, self.projection, now, self.month) if plan is not None else []

    async def _as_system(self, aggregate_id: str, decided: Callable[[], list[EventData]]) -> int:
        async with self._locks(aggregate_id):
            events = self._envelope(decided(), SYSTEM, None, None)
            if events:
                await self._append(events)
        return len(events)

    def _envelope(
        self,
        decided: Iterable[EventData],
        author: Author,
        idempotency: IdempotencyKey | None,
        correlation_id: str | None,
    ) -> list[AnyEvent]:
        now = self.clock()
        versions: dict[str, int] = {}
        events: list[AnyEvent] = []
        for data in decided:
            current = self.projection.aggregates.get(data.subject)
            versions[data.subject] = versions.get(data.subject, current.version if current else 0) + 1
            event = new_event(
                data,
                actor=author.user,
                actordept=author.department,
                aggregateversion=versions[data.subject],
                correlationid=correlation_id,
                causationid=events[-1].id if events else None,
                idempotencykey=idempotency.key if idempotency else None,
                requestdigest=idempotency.digest if idempotency else None,
                time=now,
            )
            correlation_id = event.correlationid
            events.append(event)
        return events

    async def reject(
        self,
        command_id: str,
        command_name: str,
        status: int,
        reason: str,
        *,
        errors: Iterable[FieldError] = (),
        actor: Actor | None = None,
        idempotency: IdempotencyKey,
        correlation_id: str | None,
    ) -> Answer:
        """Appends ``command.rejected`` for a command from the command topic (once per key)."""
        user = actor.user if actor else "unauthenticated"
        if (remembered := self.index.get(user, idempotency.key)) is not None:
            return remembered.answer
        rejected = CommandRejected(
            command_id=command_id,
            command=command_name[:200],
            status=status,
            reason=reason[:20_000],
            errors=tuple(errors),
        )
        event = new_event(
            rejected,
            actor=user,
            actordept=actor.department if actor else None,
            correlationid=correlation_id,
            idempotencykey=idempotency.key,
            requestdigest=idempotency.digest,
            time=self.clock(),
        )
        await self._append([event])
        return answer_for([event])
