"""Live streams share the service's one read of ``policy.alerts``, and lose and double nothing
whichever way they read: from what that read keeps, or apart from it (resuming from further
back, or overtaken while slow). The log here is a list; the stream's own read of it behaves as
``alerts_from`` does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from services.notifications.adapters.alert_stream import StreamItem, StreamPosition
from services.notifications.adapters.live_alerts import LiveAlerts
from shared.contract import catalog as c
from shared.contract.envelope import AnyEvent, new_event

PARTITIONS = 3
ALERT, RECEIPT, REFUSED = "alert", "receipt", "refused"


def alert(n: int) -> AnyEvent:
    return new_event(
        c.DeadlineDue(alert_id=f"al-{n}", task_id=f"t-{n}", title="Due", due=datetime(2027, 1, 1, tzinfo=UTC)),
        actor="policytrack-notifications",
    )


def receipt(n: int) -> AnyEvent:
    return new_event(
        c.AlertDelivered(alert_id=f"al-{n}", task_id=f"t-{n}", subscription_id="s-1", attempts=1, status_code=200),
        actor="policytrack-notifications",
    )


@dataclass
class Log:
    """Per partition, its records in offset order: an event, or None for one no reader accepts."""

    partitions: list[list[AnyEvent | None]] = field(default_factory=lambda: [[] for _ in range(PARTITIONS)])
    where: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Each event's partition and offset, by its id."""
    apart_reads: int = 0
    reading_apart: int = 0
    """Apart reads open now (a consumer each, in the service)."""

    def append(self, partition: int, kind: str) -> None:
        n = sum(map(len, self.partitions))
        event = {ALERT: alert(n), RECEIPT: receipt(n), REFUSED: None}[kind]
        if event is not None:
            self.where[event.id] = (partition, len(self.partitions[partition]))
        self.partitions[partition].append(event)

    def alerts_at_or_after(self, position: StreamPosition) -> set[tuple[int, int]]:
        return {
            (p, o)
            for p, records in enumerate(self.partitions)
            for o, event in enumerate(records)
            if o >= position.next_offset(p) and event is not None and isinstance(event.data, c.NOTICES)
        }

    async def read_apart(self, position: StreamPosition | None) -> AsyncGenerator[StreamItem, None]:
        """As ``alerts_from``: each partition from the position on, a quiet item when caught up."""
        self.apart_reads += 1
        self.reading_apart += 1
        assert position is not None, "every stream here resumes from a position"
        try:
            while True:
                for p, records in enumerate(self.partitions):
                    while (o := position.next_offset(p)) < len(records):
                        position = position.after(p, o)
                        event = records[o]
                        if event is not None and isinstance(event.data, c.NOTICES):
                            yield event, position
                yield None, position
                await asyncio.sleep(0)
        finally:
            self.reading_apart -= 1


class ServiceReader:
    """The service's own read: takes the log's records in order, partitions taking turns."""

    def __init__(self, log: Log, live: LiveAlerts) -> None:
        self.log, self.live = log, live
        self.read = [0] * PARTITIONS

    def take(self, count: int) -> None:
        for _ in range(count):
            waiting = [p for p in range(PARTITIONS) if self.read[p] < len(self.log.partitions[p])]
            if not waiting:
                return
            p = min(waiting, key=lambda q: (self.read[q], q))
            event = self.log.partitions[p][self.read[p]]
            if event is not None:
                self.live.took(p, self.read[p], event)
            self.read[p] += 1


async def received(
    stream: AsyncIterator[StreamItem], reader: ServiceReader, expected: int, taken_per_item: int
) -> list[tuple[int, int]]:
    """(partition, offset) of every alert the stream sent, until it has sent ``expected`` and then
    been quiet once with nothing left to take."""
    sent: list[tuple[int, int]] = []
    async with asyncio.timeout(3):
        async for event, after in stream:
            if event is not None:
                partition, offset = reader.log.where[event.id]
                assert after.next_offset(partition) == offset + 1, "the position after the alert"
                sent.append((partition, offset))
            reader.take(taken_per_item)
            if (
                event is None
                and len(sent) >= expected
                and all(reader.read[p] == len(reader.log.partitions[p]) for p in range(PARTITIONS))
            ):
                return sent
    return sent


def start(offsets: list[int]) -> StreamPosition:
    return StreamPosition(tuple(enumerate(offsets)))


@settings(max_examples=150, deadline=None)
@given(
    records=st.lists(st.tuples(st.integers(0, PARTITIONS - 1), st.sampled_from([ALERT, ALERT, RECEIPT, REFUSED]))),
    later=st.lists(st.tuples(st.integers(0, PARTITIONS - 1), st.sampled_from([ALERT, RECEIPT, REFUSED]))),
    resume=st.lists(st.integers(0, 60), min_size=PARTITIONS, max_size=PARTITIONS),
    keep=st.integers(1, 8),
    taken_before=st.integers(0, 80),
    taken_per_item=st.integers(0, 5),
)
def test_every_alert_from_the_position_on_is_sent_once_in_order(
    records: list[tuple[int, str]],
    later: list[tuple[int, str]],
    resume: list[int],
    keep: int,
    taken_before: int,
    taken_per_item: int,
) -> None:
    log, live = Log(), LiveAlerts(keep=keep, quiet_seconds=0.001)
    for partition, kind in records:
        log.append(partition, kind)
    reader = ServiceReader(log, live)
    reader.take(taken_before)
    position = start([min(offset, len(log.partitions[p])) for p, offset in enumerate(resume)])
    for partition, kind in later:  # written while the stream is open
        log.append(partition, kind)
    wanted = log.alerts_at_or_after(position)

    async def follow() -> list[tuple[int, int]]:
        async with aclosing(live.follow(position, log.read_apart)) as stream:
            return await received(stream, reader, len(wanted), max(1, taken_per_item))

    sent = asyncio.run(follow())
    assert sorted(sent) == sorted(wanted), "each alert from the position on, once"
    for p in range(PARTITIONS):
        offsets = [o for q, o in sent if q == p]
        assert offsets == sorted(offsets), "a partition's alerts in their order"


async def test_a_stream_that_the_kept_alerts_cover_never_reads_the_log_itself() -> None:
    log, live = Log(), LiveAlerts(keep=4, quiet_seconds=0.001)
    reader = ServiceReader(log, live)
    for n in range(30):
        log.append(n % PARTITIONS, ALERT)
    reader.take(30)
    position = start([len(records) for records in log.partitions])  # a stream of "now"
    for n in range(12):
        log.append(n % PARTITIONS, ALERT if n % 3 else RECEIPT)
    async with aclosing(live.follow(position, log.read_apart)) as stream:
        sent = await received(stream, reader, len(log.alerts_at_or_after(position)), 1)
    assert len(sent) == 8 and log.apart_reads == 0


async def test_a_stream_overtaken_while_slow_reads_apart_and_comes_back() -> None:
    log, live = Log(), LiveAlerts(keep=2, quiet_seconds=0.001)
    reader = ServiceReader(log, live)
    position = start([0, 0, 0])
    for n in range(40):
        log.append(n % PARTITIONS, ALERT)
    async with aclosing(live.follow(position, log.read_apart)) as stream:
        first = await anext(stream)  # kept: read from here, nothing taken yet so it waits
        assert first[0] is None and log.apart_reads == 0
        reader.take(40)  # forty alerts while the stream sends nothing: it is overtaken
        sent = await received(stream, reader, 40, 1)
    assert sorted(sent) == sorted(log.alerts_at_or_after(position)) and log.apart_reads == 1
    assert log.reading_apart == 0, "the stream's own reader closed once it was caught up"


async def test_a_stream_that_ends_while_reading_apart_closes_its_reader() -> None:
    log, live = Log(), LiveAlerts(keep=1, quiet_seconds=0.001)
    reader = ServiceReader(log, live)
    for _ in range(10):
        log.append(0, ALERT)
    reader.take(10)
    async with aclosing(live.follow(start([0]), log.read_apart)) as stream:
        await anext(stream)
        assert log.reading_apart == 1
    assert log.reading_apart == 0


async def test_a_record_taken_twice_is_sent_once() -> None:
    """The service's handler is retried after a failure: it takes the same record again."""
    log, live = Log(), LiveAlerts(quiet_seconds=0.001)
    alerts = [alert(0), alert(1)]
    async with aclosing(live.follow(start([0]), log.read_apart)) as stream:
        for offset in (0, 0, 1, 0, 1):
            live.took(0, offset, alerts[offset])
        sent = [item async for item in _until_quiet(stream)]
    assert [(event.id, after.next_offset(0)) for event, after in sent] == [(alerts[0].id, 1), (alerts[1].id, 2)]


async def _until_quiet(stream: AsyncIterator[StreamItem]) -> AsyncIterator[tuple[AnyEvent, StreamPosition]]:
    async for event, after in stream:
        if event is None:
            return
        yield event, after


async def test_a_new_stream_starts_from_the_shared_read_when_it_can_tell_where() -> None:
    log, live = Log(), LiveAlerts(keep=2, quiet_seconds=0.001)
    reader = ServiceReader(log, live)
    for n in range(3):
        log.append(n, ALERT)
    log.append(1, RECEIPT)
    reader.take(4)
    beginning = live.start(from_end=False, caught_up=False)
    assert beginning == StreamPosition(()), "every alert since the beginning is kept"
    assert live.start(from_end=True, caught_up=False) is None, "the log's end, while the service catches up"
    assert live.start(from_end=True, caught_up=True) == start([1, 2, 1]), "after the last record taken"
    async with aclosing(live.follow(beginning, log.read_apart)) as stream:
        sent = await received(stream, reader, 3, 1)
    assert sorted(sent) == [(0, 0), (1, 0), (2, 0)] and log.apart_reads == 0
    log.append(0, ALERT)
    reader.take(1)  # four alerts: the first two are dropped
    assert live.start(from_end=False, caught_up=True) is None, "the beginning is no longer kept"
