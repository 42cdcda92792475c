"""The tasks service's log writer after a restart: when an append's acknowledgement is lost, the
writer reads the log back to learn what became of it. Its previous instance's last events are
on the log too; they are not another writer's (the chaos test's seed 1796522958: the tasks
service killed and started again three seconds before the broker restarted took them for
another writer's, called itself fenced and refused every write after)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.errors import KafkaError

from services.tasks.adapters.event_log import KafkaEventLog, LogUnavailable, _Pending
from shared.contract import catalog as c
from shared.contract.codes import CooperationField
from shared.contract.envelope import AnyEvent, new_event
from shared.provenance.keys import SigningKey
from shared.settings import KafkaSettings


def created(task_id: str) -> AnyEvent:
    data = c.TaskCreated(
        task_id=task_id,
        plan_id="p-recovery",
        title="Port",
        field=CooperationField.TRADE,
        due=datetime(2027, 1, 1, tzinfo=UTC),
    )
    return new_event(data, actor="u-sc", aggregateversion=1)


async def test_a_restarted_writer_does_not_take_its_own_last_events_for_another_writers(
    kafka_settings: KafkaSettings, tasks_key: SigningKey
) -> None:
    transactional_id = f"tasks-recovery-{uuid.uuid4().hex[:8]}"
    namespace = uuid.uuid4().hex[:8]
    before = KafkaEventLog(kafka_settings, transactional_id=transactional_id, signing_key=tasks_key)
    await before.start()
    started_ms = int(time.time() * 1000)
    await before.submit([created(f"t-{namespace}-{n}") for n in range(5)])
    await before.stop()  # as if killed: the next instance takes the same id

    after = KafkaEventLog(kafka_settings, transactional_id=transactional_id, signing_key=tasks_key)
    await after.start()
    try:
        # An append whose acknowledgement was lost and that never reached the log: the read-back
        # finds the previous instance's events within its window, and nothing of this batch.
        lost = _Pending([created(f"t-{namespace}-lost")])
        outcome = await after._recover([lost], started_ms)
        assert isinstance(outcome, LogUnavailable), outcome
        assert not after.fenced, "the writer took its own previous instance for another writer"
    finally:
        await after.stop()


Transaction = Callable[[list[_Pending]], Awaitable[None]]


@asynccontextmanager
async def first_transaction_troubled(
    settings: KafkaSettings,
    key: SigningKey,
    monkeypatch: pytest.MonkeyPatch,
    trouble: Callable[[Transaction, list[_Pending]], Awaitable[None]],
) -> AsyncIterator[tuple[KafkaEventLog, str]]:
    """A writer whose first transaction runs through ``trouble``, and the others as they are;
    two transactions are tried in the block."""
    namespace = uuid.uuid4().hex[:8]
    writer = KafkaEventLog(settings, transactional_id=f"tasks-troubled-{namespace}", signing_key=key)
    await writer.start()
    transaction = writer._transaction
    tried: list[int] = []

    async def first_troubled(batch: list[_Pending]) -> None:
        tried.append(len(batch))
        await (trouble(transaction, batch) if len(tried) == 1 else transaction(batch))

    monkeypatch.setattr(writer, "_transaction", first_troubled)
    try:
        yield writer, namespace
        assert len(tried) == 2
    finally:
        await writer.stop()


async def cancelled_under_the_writer(_transaction: Transaction, _batch: list[_Pending]) -> None:
    raise asyncio.CancelledError


async def a_record_answered_with_an_error(transaction: Transaction, batch: list[_Pending]) -> None:
    await transaction(batch)
    failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    failed.set_exception(KafkaError("the record's answer was lost"))
    batch[0].sent[0] = failed


async def test_a_transaction_cancelled_under_the_writer_leaves_it_writing(
    kafka_settings: KafkaSettings, tasks_key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transaction that ended cancelled (a future it awaited cancelled under it) ended the
    writer's loop: that append and every later one waited for ever, and nothing was logged. The
    CI of 7 December: after the third broker restart of test_writer_after_broker_restarts, four
    commands went unanswered for four and a half minutes, the service silent, the writer's own
    60 s limit on a transaction never reached."""
    trouble = cancelled_under_the_writer
    async with first_transaction_troubled(kafka_settings, tasks_key, monkeypatch, trouble) as (writer, namespace):
        with pytest.raises(LogUnavailable):
            await asyncio.wait_for(writer.submit([created(f"t-{namespace}-first")]), 30)
        await asyncio.wait_for(writer.submit([created(f"t-{namespace}-second")]), 30)


async def test_a_record_that_failed_though_its_transaction_committed_is_learned_from_the_log(
    kafka_settings: KafkaSettings, tasks_key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit's answer and a record's may disagree; reading a placement from a failed record
    ended the writer's loop as above. The log says where the batch is."""
    trouble = a_record_answered_with_an_error
    async with first_transaction_troubled(kafka_settings, tasks_key, monkeypatch, trouble) as (writer, namespace):
        await asyncio.wait_for(writer.submit([created(f"t-{namespace}-first")]), 30)
        await asyncio.wait_for(writer.submit([created(f"t-{namespace}-second")]), 30)
