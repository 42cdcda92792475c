"""What a command is answered, on HTTP and on the command topic alike: the ids and version its
events made, or the ``command.rejected`` that refused it (whose status the contract carries)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.contract import catalog as c
from shared.contract.catalog import CommandRejected, MilestoneMet, MilestoneScheduled
from shared.contract.envelope import AnyEvent

CREATING_TYPES = frozenset(
    cls.event_type
    for cls in (
        c.PlanApproved,
        c.TaskCreated,
        c.MilestoneScheduled,
        c.IssueReported,
        c.ApprovalRequested,
        c.EvaluationRecorded,
        c.SupportRequested,
    )
)


class StaleVersion(Exception):
    """``If-Match`` named a version the aggregate has moved past."""

    def __init__(self, expected: int, current: int) -> None:
        super().__init__(f"version {expected} is stale; the current version is {current}")
        self.current = current


class KeyReused(Exception):
    """The Idempotency-Key was first sent with a different request."""

    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was already used for a different request (method, path or body)")


class KeyInFlight(Exception):
    """A request with this Idempotency-Key is still being handled."""

    def __init__(self) -> None:
        super().__init__("a request with this Idempotency-Key is still in flight; retry once it has been answered")


class NotOwner(Exception):
    """Another instance decides the aggregates of this partition (it is forwarded there)."""

    def __init__(self, partition: int) -> None:
        super().__init__(f"partition {partition} is decided by another instance")
        self.partition = partition


@dataclass(frozen=True)
class Answer:
    """What a write answered; a retry with the same idempotency key gets it again."""

    status: int
    body: dict[str, Any]


def answer_body(event: AnyEvent) -> dict[str, Any]:
    data = event.data
    if isinstance(data, CommandRejected):
        return {"id": data.command_id}
    if isinstance(data, MilestoneScheduled | MilestoneMet):
        return {"id": data.milestone_id, "task_id": data.task_id, "version": event.aggregateversion}
    body: dict[str, Any] = {"id": event.subject, "version": event.aggregateversion}
    task_id = getattr(data, "task_id", None)
    if task_id is not None and task_id != event.subject:
        body["task_id"] = task_id
    return body


def answer_for(events: list[AnyEvent]) -> Answer:
    """The answer to the command that appended ``events`` (all of one command, in order)."""
    first, last = events[0], events[-1]
    if isinstance(first.data, CommandRejected):
        rejected = first.data
        return Answer(
            rejected.status,
            {"status": rejected.status, "detail": rejected.reason, "errors": [e.model_dump() for e in rejected.errors]},
        )
    status = 201 if first.type in CREATING_TYPES else 200
    return Answer(status, {**answer_body(first), "version": last.aggregateversion})
