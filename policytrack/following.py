"""Following the log from a terminal (``policytrack tail``): alerts or events as they are
appended, filtered, each shown as a line or as its CloudEvent; a record whose writer's proof
fails is never shown, only named."""

from __future__ import annotations

from rich.console import Console

from shared.contract.catalog import full_type
from shared.contract.codec import DecodeFailure, decode_record, to_structured
from shared.contract.codes import Department
from shared.contract.envelope import AnyEvent
from shared.kafka.access import OPERATOR
from shared.settings import KafkaSettings, RuntimeSettings

console = Console()
err = Console(stderr=True)
"""Where a refused record is named: apart from the output, which --json keeps to CloudEvents."""


async def follow(
    topic: str,
    event_type: str | None,
    task: str | None,
    department: Department | None,
    from_beginning: bool,
    count: int | None,
    as_json: bool,
) -> None:
    from shared.kafka.consumer import open_consumer, partitions_of, read_through
    from shared.provenance.gate import ProofGate
    from shared.provenance.keys import KeyFolder

    shown = 0
    proofs = ProofGate(KeyFolder.of(RuntimeSettings()).trust())
    kafka = KafkaSettings().as_user(OPERATOR.name)
    async with open_consumer(kafka, client_id="policytrack-tail") as consumer:
        partitions = await partitions_of(consumer, [topic])
        consumer.assign(partitions)
        if from_beginning:
            await consumer.seek_to_beginning(*partitions)
        else:
            await consumer.seek_to_end(*partitions)
        while count is None or shown < count:
            batch = await consumer.getmany(timeout_ms=500)
            for tp in partitions:
                complete = await read_through(consumer, tp)
                for record, verdict in proofs.admit(
                    batch.get(tp, []), complete=complete, topic=tp.topic, partition=tp.partition
                ):
                    if not verdict.ok:
                        err.print(f"[red]refused[/] {tp.topic}/{tp.partition}@{record.offset}: {verdict.refusal}")
                        continue
                    event = decode_record(record)
                    if isinstance(event, DecodeFailure) or not wanted(event, event_type, task, department):
                        continue
                    show(event, as_json)
                    shown += 1
                    if count is not None and shown >= count:
                        return


def wanted(event: AnyEvent, event_type: str | None, task: str | None, department: Department | None) -> bool:
    data = event.data
    departments = {*getattr(data, "departments", ()), getattr(data, "escalated_to", None), event.actordept}
    return (
        (event_type is None or event.type == full_type(event_type))
        and (task is None or getattr(data, "task_id", event.subject) == task)
        and (department is None or department in departments)
    )


def show(event: AnyEvent, as_json: bool) -> None:
    if as_json:
        print(to_structured(event).decode(), flush=True)
        return
    data = event.data
    what = getattr(data, "title", "") or getattr(data, "note", "") or getattr(data, "reason", "")
    console.print(
        f"{event.time:%Y-%m-%d %H:%M:%S}  [bold]{event.type.split('.', 2)[2].removesuffix('.v1'):<28}[/]"
        f" {getattr(data, 'task_id', event.subject):<22} {event.actor:<28} {what}"
    )
