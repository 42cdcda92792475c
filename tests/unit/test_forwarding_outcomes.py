"""The outcome of a forwarded command, read back from the log: all of its events (a task's
creation is two), answered once the partition is read to where the broker said transactions
were complete; a second wait on the same key is refused while the first is open."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import TopicPartition

from services.tasks.adapters.follower import Outcomes
from services.tasks.application.answers import KeyInFlight, answer_for
from shared.contract import catalog as c
from shared.contract.codes import CooperationField, Department
from shared.contract.envelope import new_event

PARTITION = TopicPartition("policy.events", 1)


class ReadingConsumer:
    """Where a follower's consumer stands on the partition, and the broker's last stable offset."""

    def __init__(self, position: int, stable: int | None) -> None:
        self.at, self.stable = position, stable

    def last_stable_offset(self, partition: TopicPartition) -> int | None:
        return self.stable

    async def position(self, partition: TopicPartition) -> int:
        return self.at


def created(task_id: str, key: str) -> list[Any]:
    made = c.TaskCreated(
        task_id=task_id, plan_id="p", title="T", field=CooperationField.TRADE, due=datetime(2030, 1, 1, tzinfo=UTC)
    )
    assigned = c.TaskAssigned(task_id=task_id, lead_department=Department.JILIN)
    return [
        new_event(data, actor="u-jilin", aggregateversion=v, idempotencykey=key)
        for v, data in ((1, made), (2, assigned))
    ]


async def test_a_command_is_answered_with_all_its_events_once_its_transaction_is_read() -> None:
    outcomes = Outcomes()
    waiting = outcomes.expect("u-jilin", "k1")
    first, second = created("task-1", "k1")

    outcomes.saw(first, PARTITION)
    await outcomes.settle(ReadingConsumer(position=11, stable=13))  # the second event is not read yet
    assert not waiting.done()

    outcomes.saw(second, PARTITION)
    await outcomes.settle(ReadingConsumer(position=13, stable=13))
    assert waiting.result() == [first, second]
    assert answer_for(waiting.result()).body["version"] == 2


async def test_other_users_events_and_unknown_keys_are_not_an_answer() -> None:
    outcomes = Outcomes()
    waiting = outcomes.expect("u-jilin", "k1")
    for event in created("task-2", "k2"):
        outcomes.saw(event, PARTITION)
    stranger = created("task-3", "k1")[0].model_copy(update={"actor": "u-miit"})
    outcomes.saw(stranger, PARTITION)
    await outcomes.settle(ReadingConsumer(position=20, stable=20))
    assert not waiting.done()


async def test_the_same_key_waiting_twice_is_in_flight() -> None:
    outcomes = Outcomes()
    outcomes.expect("u-jilin", "k1")
    with pytest.raises(KeyInFlight):
        outcomes.expect("u-jilin", "k1")
    outcomes.forget("u-jilin", "k1")
    outcomes.expect("u-jilin", "k1")
