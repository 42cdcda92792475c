"""What the tasks service knows from the log and how far it has read it: the state ``decide``
reads, the idempotency answers, each task's history and, per partition, the position covered.
Events enter it one way, committed and placed on the log, whether read at start or appended."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from services.tasks.adapters.history import TaskHistory, packed, unpacked
from services.tasks.adapters.idempotency import IdempotencyIndex, Remembered
from shared.contract.envelope import AnyEvent
from shared.contract.topics import EVENTS
from shared.domain.projection import Projection
from shared.domain.state import Aggregate


class Placement(msgspec.Struct, frozen=True):
    """Where a record is on the log. A Struct: one is made for every event a rebuild takes, in C
    (a frozen dataclass sets each field through Python)."""

    topic: str
    partition: int
    offset: int


@dataclass
class LogPositions:
    """Per partition of the events topic: the next offset not yet taken in, and the id of the
    record just before it, so a snapshot's claim can be checked against the log."""

    topic: str = EVENTS
    next: dict[int, tuple[int, str]] = field(default_factory=dict)

    def took(self, where: Placement, event_id: str) -> None:
        if where.topic != self.topic:
            return
        current = self.next.get(where.partition)
        if current is None or where.offset >= current[0]:
            self.next[where.partition] = (where.offset + 1, event_id)

    def offset(self, partition: int) -> int:
        found = self.next.get(partition)
        return 0 if found is None else found[0]


@dataclass(frozen=True)
class ViewPart:
    """What a view read from some of the topic's partitions holds, handed from the process that
    read them to the one that serves: plain data, the history as bytes."""

    projection: Projection
    answers: dict[tuple[str, str], Remembered]
    history: bytes
    """The recent events of each task, ``packed``."""
    positions: dict[int, tuple[int, str]]
    events_taken: int


@dataclass
class LogView:
    projection: Projection = field(default_factory=Projection)
    index: IdempotencyIndex = field(default_factory=IdempotencyIndex)
    history: TaskHistory = field(default_factory=TaskHistory)
    positions: LogPositions = field(default_factory=LogPositions)
    events_taken: int = 0
    """Events taken in since the view was made (from a snapshot or from nothing)."""

    def take(self, event: AnyEvent, where: Placement, structured: bytes | None = None) -> None:
        """One event read from the log (``structured``: its record in structured mode, kept in
        its task's history). Raises when it cannot follow its aggregate's state; the position
        still moves past it."""
        self.positions.took(where, event.id)
        if self.projection.apply(event):
            self.history.add(event, structured)
        self.index.record(event)
        self.events_taken += 1

    def adopt(
        self,
        events: list[AnyEvent],
        states: dict[str, Aggregate],
        placed: list[Placement],
        writes: Callable[[int], bool] | None = None,
    ) -> None:
        """Events this service appended, with the states ``Projection.preview`` computed for them.

        With several writers, only events on partitions this instance ``writes`` are taken here:
        another partition's position must move only as its records are read in order. An event
        that reading the log already took in is not taken twice."""
        self.projection.adopt(events, states)
        for event, where in zip(events, placed, strict=True):
            mine = writes is None or writes(where.partition)
            if not mine or where.offset < self.positions.offset(where.partition):
                continue
            self.positions.took(where, event.id)
            if event.subject in states:
                self.history.add(event)
            self.index.record(event)
            self.events_taken += 1

    def part(self) -> ViewPart:
        """What this view holds, to be taken into another's (``extend``)."""
        history = packed(self.history.recent)
        return ViewPart(self.projection, self.index.answers(), history, dict(self.positions.next), self.events_taken)

    def extend(self, part: ViewPart) -> None:
        """Takes in what a view of other partitions of the same topic read."""
        self.projection.extend(part.projection)
        self.index.extend(part.answers)
        self.history.extend(unpacked(part.history))
        self.positions.next.update(part.positions)
        self.events_taken += part.events_taken
