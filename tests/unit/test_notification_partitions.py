"""Two notifications instances sharing the schedule by partition, in process: each emits only
the alerts of the tasks it owns; when one dies, the other emits what it left due, and never
again what is already on the log (same alert id, so the same ``webhook-id``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from cryptography.fernet import Fernet

from services.notifications.adapters.addresses import AddressPolicy
from services.notifications.adapters.delivery import Deliveries, RetryPolicy
from services.notifications.adapters.sealing import Sealer
from services.notifications.application.service import NotificationService
from services.notifications.domain.schedule import Policy, Schedule
from shared.contract import catalog as c
from shared.contract.codes import CooperationField, Department
from shared.contract.envelope import AnyEvent, new_event
from tests.fakes import RecordingProducer

DUE = datetime(2027, 3, 1, tzinfo=UTC)
POLICY = Policy(lead_times=(timedelta(days=1),), grace=timedelta(0), escalate_after=timedelta(days=30))
TASKS = ("task-a", "task-b", "task-c", "task-d")


def instance(owned: set[str], now: list[datetime]) -> tuple[NotificationService, RecordingProducer]:
    producer = RecordingProducer()
    addresses = AddressPolicy(dev=True, allow_private=False, allowed_hosts=frozenset())
    deliveries = Deliveries(producer, RetryPolicy(timedelta(seconds=1), 0.05, 0.1, 1.0), addresses, 10)
    service = NotificationService(
        Schedule(POLICY),
        producer,
        deliveries,
        Sealer(Fernet.generate_key().decode()),
        addresses,
        clock=lambda: now[0],
    )
    service.owns = lambda task_id: task_id in owned
    return service, producer


def history() -> list[AnyEvent]:
    events: list[AnyEvent] = []
    for task in TASKS:
        created = c.TaskCreated(task_id=task, plan_id="p", title=task, field=CooperationField.TRADE, due=DUE)
        events.append(new_event(created, actor="u-jilin", time=DUE - timedelta(days=90)))
        assigned = c.TaskAssigned(task_id=task, lead_department=Department.JILIN)
        events.append(new_event(assigned, actor="u-jilin", time=DUE - timedelta(days=90)))
    return events


async def one_pass(service: NotificationService) -> None:
    stopping = asyncio.Event()

    async def settled() -> None:
        stopping.set()

    await service.run_scheduler(stopping, settled=settled)


def alert_ids(producer: RecordingProducer) -> dict[str, str]:
    return {e.data.alert_id: e.subject for e in producer.published if isinstance(e.data, c.DeadlineAlert)}


async def test_each_owner_emits_its_own_and_the_survivor_emits_what_the_dead_one_left() -> None:
    now = [DUE - timedelta(hours=12)]  # the one-day lead time has passed for every task
    mine, theirs = {"task-a", "task-b"}, {"task-c", "task-d"}
    first, first_log = instance(mine, now)
    second, second_log = instance(theirs, now)
    for event in history():
        await first.on_event(event)
        await second.on_event(event)

    await one_pass(first)
    await one_pass(second)
    assert set(alert_ids(first_log).values()) == mine
    assert set(alert_ids(second_log).values()) == theirs
    for alert in first_log.published:  # each reads the other's alerts back from the log
        await second.on_event(alert)
    for alert in list(second_log.published):
        await first.on_event(alert)
    assert not first.deferred and not second.deferred

    # The second instance's alerts are due, but it dies before emitting them: the first one
    # holds them deferred and emits them once it owns their partitions.
    now[0] = DUE + timedelta(minutes=1)
    await one_pass(first)
    due_theirs = set(first.deferred)
    assert due_theirs and {first.deferred[a].subject for a in due_theirs} == theirs
    emitted_before = set(alert_ids(first_log))

    mine |= theirs
    await one_pass(first)
    emitted = alert_ids(first_log)
    assert due_theirs <= set(emitted) - emitted_before, "the dead owner's due alerts are emitted by the survivor"
    assert len(first_log.published) == len({e.id for e in first_log.published}), "no alert emitted twice"
    assert not first.deferred
    await first.deliveries.close()
    await second.deliveries.close()
