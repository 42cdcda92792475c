"""A command on a partition other than its aggregate's is forwarded to the one that decides it
(issue 28, item 2). Read again after a crash before its offset was committed, a create command
draws the same id and goes to the same partition under the same idempotency key, so it cannot
create a second task; a forward that keeps failing is answered with one rejection."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import orjson
import pytest

from services.tasks.adapters.event_log import InMemoryEventLog
from services.tasks.application.service import TaskService, new_id
from services.tasks.application.view import LogView
from services.tasks.domain import commands as cmd
from services.tasks.entrypoints.command_topic import CommandParser, CommandRecord, CommandTopicHandler, TokenPurge
from shared.auth import Actor
from shared.contract.catalog import CommandRejected
from shared.contract.codec import DecodeFailure
from shared.contract.codes import Department, Role
from shared.kafka.partitioning import partition_for
from shared.provenance.acts import sign_command
from shared.provenance.keys import KeyFolder
from shared.retrying import FORWARDING, RetryPolicy
from shared.settings import KafkaSettings

PARTITIONS = 3
STATE_COUNCIL = Actor(user="u-sc", department=Department("SC"), roles=frozenset({Role.APPROVER}))


@dataclass
class Record:
    value: bytes
    headers: list[tuple[str, bytes | None]]
    partition: int
    offset: int
    timestamp: int = 1_790_000_000_000
    key: bytes | None = None
    topic: str = "policy.commands"


class EveryPartitionHere:
    """One instance that decides every partition, keyed as the producer keys aggregates."""

    def partition_of(self, aggregate_id: str) -> int:
        return partition_for(aggregate_id, PARTITIONS)

    def owns(self, partition: int) -> bool:
        return True

    def writes(self, partition: int) -> bool:
        return True

    async def caught_up(self) -> None:
        pass


@dataclass
class Forwarder:
    """Where forwarded records go; ``failing`` forwards raise as an unreachable broker does."""

    failing: bool = False
    sent: list[tuple[int, bytes, dict[str, bytes | None]]] = field(default_factory=list)
    tries: int = 0

    async def send(
        self, topic: str, value: bytes, *, key: bytes, headers: list[tuple[str, bytes | None]], partition: int
    ) -> None:
        self.tries += 1
        if self.failing:
            raise ConnectionError("the broker is unreachable")
        self.sent.append((partition, value, dict(headers)))


async def a_plan_approved(log: InMemoryEventLog, view: LogView) -> None:
    service = TaskService(log, view)
    await service.execute(cmd.ApprovePlan(plan_id="plan-1", title="Overall Plan"), STATE_COUNCIL)


def create_task_record(tmp_path: Path, partition: int) -> tuple[Record, CommandParser]:
    """JILIN's signed create_task without a task id, on ``partition`` (at offset 41)."""
    keys = KeyFolder(tmp_path / "keys")
    body = orjson.dumps(
        {
            "plan_id": "plan-1",
            "title": "Trade",
            "field": "trade",
            "lead_department": "JILIN",
            "due": "2030-01-01T00:00:00Z",
        }
    )
    signature = sign_command(
        keys.signing_key("JILIN", create=True),
        "create_task",
        body,
        user="u-jilin",
        roles=["implementer"],
        idempotency_key="idk-1",
    )
    record = Record(body, [("command", b"create_task"), ("signature", signature)], partition, 41)
    return record, CommandParser(keys.trust())


def handler_with(forwarder: Forwarder, log: InMemoryEventLog, view: LogView) -> CommandTopicHandler:
    service = TaskService(log, view, ownership=EveryPartitionHere())
    purge = TokenPurge(KafkaSettings(), "policytrack-tasks-commands")
    quick, forwarding_retries = RetryPolicy(0.001, 0.001), replace(FORWARDING, first=0.001, longest=0.001)
    return CommandTopicHandler(
        service,
        lambda: None,
        purge,
        forwarding=forwarder,  # type: ignore[arg-type]  # a fake producer: only send is used
        appending=quick,
        forwarding_retries=forwarding_retries,
    )


def parsed(parser: CommandParser, record: Record) -> CommandRecord:
    command = parser(record)
    assert not isinstance(command, DecodeFailure), command
    return command


async def misrouted_create(tmp_path: Path) -> tuple[Record, CommandParser, str]:
    """A record whose drawn task id belongs to another partition than the record's."""
    for partition in range(PARTITIONS):
        record, parser = create_task_record(tmp_path, partition)
        drawn = parsed(parser, record).drawn_for
        assert drawn is not None
        if partition_for(task_id := new_id("task", drawn), PARTITIONS) != partition:
            return record, parser, task_id
    pytest.fail("every partition drew an id of its own")


async def test_a_create_read_twice_is_forwarded_twice_as_the_same_command(tmp_path: Path) -> None:
    record, parser, _ = await misrouted_create(tmp_path)
    log, view, forwarder = InMemoryEventLog(), LogView(), Forwarder()
    handler = handler_with(forwarder, log, view)

    await handler(parsed(parser, record), record)
    await handler(parsed(parser, record), record)

    (first_to, _, first), (second_to, _, second) = forwarder.sent
    assert first["created-id"] is not None and first["created-id"] == second["created-id"], "the same task id"
    assert first_to == second_to == partition_for(first["created-id"].decode(), PARTITIONS)
    assert first["idempotency-key"] == second["idempotency-key"] == b"idk-1"
    assert log.events == [], "nothing is decided on the partition the record came in on"


async def test_both_forwarded_copies_create_one_task(tmp_path: Path) -> None:
    record, parser, task_id = await misrouted_create(tmp_path)
    log, view, forwarder = InMemoryEventLog(), LogView(), Forwarder()
    await a_plan_approved(log, view)
    handler = handler_with(forwarder, log, view)
    original = parsed(parser, record)
    await handler(original, record)
    await handler(parsed(parser, record), record)

    for offset, (partition, value, headers) in enumerate(forwarded := forwarder.sent):
        copy = Record(value, list(headers.items()), partition, offset)
        # What the owner's parser reads from the copy (its headers, under the tasks service's proof).
        owner_reads = replace(
            original,
            command_id=f"policy.commands:{partition}:{offset}",
            partition=partition,
            created_id=(headers["created-id"] or b"").decode(),
            drawn_for=None,
        )
        await handler(owner_reads, copy)

    assert len(forwarded) == 2
    created = [e for e in log.events if e.type == "org.policytrack.task.created.v1"]
    assert [e.subject for e in created] == [task_id], "one task, with the id drawn for the record"


async def test_a_forward_that_keeps_failing_is_answered_with_one_rejection(tmp_path: Path) -> None:
    record, parser, _ = await misrouted_create(tmp_path)
    log, view = InMemoryEventLog(), LogView()
    forwarder = Forwarder(failing=True)
    handler = handler_with(forwarder, log, view)

    await handler(parsed(parser, record), record)

    assert forwarder.tries == FORWARDING.attempts == 5, "tried as often as the policy says, then answered"
    [rejected] = log.events
    assert rejected.type == "org.policytrack.command.rejected.v1"
    assert isinstance(rejected.data, CommandRejected)
    assert rejected.data.status == 503 and "could not be forwarded" in rejected.data.reason
    assert rejected.actor == "u-jilin"
