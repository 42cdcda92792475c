"""What the tasks service does with a command, whichever edge it came in by: check it against
the state rebuilt from the log, evolve its events, append them, and answer.

Commands are decided one after another, each against the state its predecessors will have
made: the committed state overlaid with what is submitted but not yet on the log. Their
events are then written together (group commit), in the order they were decided, so a slow
transaction does not serialize the callers. The committed state changes only once events
are on the log; when a write fails, everything decided on it fails too and the overlay is
dropped. An Idempotency-Key returns the first answer to a retry of the same request, refuses
the same key for a different request, and refuses it while the first request is in flight
(after waiting a moment for it: another instance may have answered from the log already).
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol

from services.tasks.adapters.event_log import EventLog, LogUnavailable
from services.tasks.adapters.idempotency import IdempotencyIndex, Remembered
from services.tasks.application.answers import Answer, KeyInFlight, KeyReused, NotOwner, StaleVersion, answer_for
from services.tasks.application.view import LogView, Placement
from services.tasks.domain import commands as cmd
from services.tasks.domain.assessments import evaluation_due, health_change
from services.tasks.domain.decide import decide
from shared.auth import Actor
from shared.clock import Clock, utc_now
from shared.contract.catalog import CommandRejected, EventData, Evidence, FieldError
from shared.contract.codes import Department
from shared.contract.envelope import AnyEvent, new_event
from shared.domain.projection import Projection
from shared.domain.refusals import Invalid, Refused
from shared.domain.state import Aggregate
from shared.provenance.acts import SignedAct


def new_id(prefix: str, drawn_for: str | None = None) -> str:
    """A new aggregate's id: random, or, ``drawn_for`` one record, the same every time that
    record is read again (a redelivered create must create the same aggregate, on the same
    partition, or its idempotency key is looked up where the first one never went)."""
    if drawn_for is None:
        return f"{prefix}-{uuid.uuid4().hex[:16]}"
    return f"{prefix}-{hashlib.sha256(drawn_for.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class IdempotencyKey:
    key: str
    digest: str
    """The request's fingerprint (``adapters.idempotency.fingerprint``)."""


def _replayed(remembered: Remembered, idempotency: IdempotencyKey) -> Answer:
    """The first answer under the key, to a retry of the same request; KeyReused to another."""
    if remembered.digest is not None and remembered.digest != idempotency.digest:
        raise KeyReused()
    return remembered.answer


@dataclass(frozen=True)
class Author:
    """Whom an event names as its actor: the token's user, or the system itself."""

    user: str
    department: Department | None


SYSTEM = Author("policytrack-tasks", None)
CATCH_UP_SECONDS = 5.0
"""How long a command refused on this instance's view may wait for the others' appends."""
KEY_SETTLING_SECONDS = 2.0
"""How long a retry waits for the request in flight under its key before it is refused (409)."""


class Ownership(Protocol):
    """With several instances: which partition an aggregate is on, and which this one decides."""

    def partition_of(self, aggregate_id: str) -> int: ...
    def owns(self, partition: int) -> bool: ...
    def writes(self, partition: int) -> bool:
        """Owns it, or still finishes the appends it made while it did."""
        ...

    async def caught_up(self) -> None:
        """Returns once the view holds what every writer had appended when it was called."""
        ...


class EvidenceHeld(Protocol):
    async def holds(self, evidence: Evidence) -> bool:
        """Whether the file was uploaded and is kept."""
        ...


class TaskService:
    def __init__(
        self,
        log: EventLog,
        view: LogView,
        clock: Clock = utc_now,
        ownership: Ownership | None = None,
        evidence: EvidenceHeld | None = None,
    ) -> None:
        self.log = log
        self.evidence = evidence
        """None where no files are kept: a command naming evidence is refused."""
        self.view = view
        self.clock = clock
        self.ownership = ownership
        """None with one instance, which decides every aggregate."""
        self.month: timedelta | None = None
        """A month's length for evaluation cycles, in demonstrations only; calendar months otherwise."""
        self._unwritten: dict[str, tuple[Aggregate, int]] = {}
        """Per aggregate: its state once the submitted appends are on the log, and how many are not yet."""

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
        act: SignedAct | None = None,
    ) -> Answer:
        """Decide and append. Refused, StaleVersion, KeyReused, KeyInFlight, Fenced and
        LogUnavailable append nothing. A command its department signed (``act``) keeps that
        signature in every event it causes."""
        if idempotency is None:
            return await self._execute(command, actor, if_match, None, correlation_id, act)
        if (remembered := self.index.get(actor.user, idempotency.key)) is not None:
            return _replayed(remembered, idempotency)
        if not self.index.begin(actor.user, idempotency.key):
            # The first request's events can be read, and answered, by another instance before
            # this one has their acknowledgement: a retry that comes meanwhile waits for it.
            if (remembered := await self.index.settled(actor.user, idempotency.key, KEY_SETTLING_SECONDS)) is None:
                raise KeyInFlight()
            return _replayed(remembered, idempotency)
        try:
            return await self._execute(command, actor, if_match, idempotency, correlation_id, act)
        finally:
            self.index.end(actor.user, idempotency.key)

    async def _execute(
        self,
        command: cmd.Command,
        actor: Actor,
        if_match: int | None,
        idempotency: IdempotencyKey | None,
        correlation_id: str | None,
        act: SignedAct | None,
    ) -> Answer:
        await self._evidence_uploaded(command)
        partition = self.owned_partition(command.subject_id)
        # No await from reading the state to submitting the events: that is what orders the commands.
        try:
            state, decided = self._decided(command, actor, if_match)
        except Refused:
            if self.ownership is None:
                raise
            # What the command refers to (a new task's plan, an issue's task) may be another
            # writer's, appended after this view last read the log: refused only once it has.
            await self._caught_up_or(command.subject_id)
            state, decided = self._decided(command, actor, if_match)
        events = self._envelope(state, decided, Author(actor.user, actor.department), idempotency, correlation_id, act)
        await self._append(state, events, partition)
        return answer_for(events)

    async def _evidence_uploaded(self, command: cmd.Command) -> None:
        for evidence in getattr(command, "evidence", ()):
            if self.evidence is None or not await self.evidence.holds(evidence):
                raise Invalid(f"no file {evidence.name} ({evidence.sha256}) was uploaded as evidence", "evidence")

    def _decided(self, command: cmd.Command, actor: Actor, if_match: int | None) -> tuple[Projection, list[EventData]]:
        state = self._deciding_state()
        if if_match is not None and command.target is not None:
            current = state.aggregates.get(getattr(command, command.target))
            if current is not None and current.version != if_match:
                raise StaleVersion(if_match, current.version)
        return state, decide(command, actor, state, at=self.clock())

    async def _caught_up_or(self, aggregate_id: str) -> None:
        """Waits for the view to hold what every writer has appended; raises NotOwner when the
        aggregate's partition moved meanwhile (and LogUnavailable when the log cannot say)."""
        assert self.ownership is not None
        try:
            await asyncio.wait_for(self.ownership.caught_up(), CATCH_UP_SECONDS)
        except TimeoutError as error:
            raise LogUnavailable("the log was not read to its end in time") from error
        self.owned_partition(aggregate_id)

    def owned_partition(self, aggregate_id: str) -> int | None:
        """The partition this instance decides ``aggregate_id`` on; NotOwner when another does."""
        if self.ownership is None:
            return None
        partition = self.ownership.partition_of(aggregate_id)
        if not self.ownership.owns(partition):
            raise NotOwner(partition)
        return partition

    def _deciding_state(self) -> Projection:
        """The committed state overlaid with what is submitted but not yet on the log."""
        return self.projection.overlaid({key: state for key, (state, _) in self._unwritten.items()})

    async def _append(self, state: Projection, events: list[AnyEvent], partition: int | None) -> None:
        states = state.preview(events)  # an event that cannot be applied is never appended
        written = self.log.submit(
            events, partial(self._written, events, states), partial(self._forget, states), partition=partition
        )
        for aggregate_id, after in states.items():
            self._unwritten[aggregate_id] = (after, self._unwritten.get(aggregate_id, (after, 0))[1] + 1)
        # A caller that gives up does not stop the write, nor its taking into the state.
        await asyncio.shield(written)

    def _written(self, events: list[AnyEvent], states: dict[str, Aggregate], placed: list[Placement]) -> None:
        self.view.adopt(events, states, placed, self.ownership.writes if self.ownership else None)
        for aggregate_id in states:
            after, pending = self._unwritten.get(aggregate_id, (None, 0))
            if pending > 1 and after is not None:
                self._unwritten[aggregate_id] = (after, pending - 1)
            else:
                self._unwritten.pop(aggregate_id, None)

    def _forget(self, states: dict[str, Aggregate]) -> None:
        """A write failed: whatever was decided on it fails too (the log refuses what is queued
        behind it), so its aggregates are decided on the committed state again."""
        for aggregate_id in states:
            self._unwritten.pop(aggregate_id, None)

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
        task = self._deciding_state().task(task_id)
        return [*health_change(task, now)] if task is not None else []

    def _evaluation(self, plan_id: str, now: datetime) -> list[EventData]:
        state = self._deciding_state()
        plan = state.plan(plan_id)
        return [*evaluation_due(plan, state, now, self.month)] if plan is not None else []

    async def _as_system(self, decider: str, decided: Callable[[], list[EventData]]) -> int:
        """What ``decided`` records, decided by the owner of ``decider``'s partition."""
        try:
            partition = self.owned_partition(decider)
        except NotOwner:
            return 0
        state = self._deciding_state()
        events = self._envelope(state, decided(), SYSTEM, None, None)
        if events:
            await self._append(state, events, partition)
        return len(events)

    def _envelope(
        self,
        state: Projection,
        decided: Iterable[EventData],
        author: Author,
        idempotency: IdempotencyKey | None,
        correlation_id: str | None,
        act: SignedAct | None = None,
    ) -> list[AnyEvent]:
        now = self.clock()
        signed = act.encode() if act is not None else None
        versions: dict[str, int] = {}
        events: list[AnyEvent] = []
        for data in decided:
            current = state.aggregates.get(data.subject)
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
                signedcommand=signed,
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
        partition: int | None = None,
    ) -> Answer:
        """Appends ``command.rejected`` for a command from the command topic (once per key),
        through the writer of the command's partition when there are several."""
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
        await self._append(self.projection, [event], partition)
        return answer_for([event])
