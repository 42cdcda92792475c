"""The tasks service's log writer after a restart: when an append's acknowledgement is lost, the
writer reads the log back to learn what became of it. Its previous instance's last events are
on the log too; they are not another writer's (the chaos test's seed 1796522958: the tasks
service killed and started again three seconds before the broker restarted took them for
another writer's, called itself fenced and refused every write after)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

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
