"""What the tasks service does with a command: check it against the state rebuilt from the
log, append its events, and answer. The same path serves HTTP and the command topic."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import ConsumerRecord
from pydantic import ValidationError

from services.tasks import commands as cmd
from services.tasks.decide import DomainError, decide
from services.tasks.store import Answer, EventLog, IdempotencyIndex, KeyedLocks, answer_for
from shared.auth import Actor, AuthError, TokenVerifier, reads_everything
from shared.contract.catalog import CommandRejected, FieldError
from shared.contract.codec import DecodeFailure
from shared.contract.envelope import CloudEvent, new_event
from shared.domain.evolve import Projection
from shared.domain.state import Task, TaskStatus
from shared.http.preconditions import parse_if_match
from shared.http.problems import field_errors
from shared.logging import get_logger

log = get_logger(__name__)
Clock = Callable[[], datetime]


class StaleVersion(Exception):
    """``If-Match`` named a version the aggregate has moved past (412)."""

    def __init__(self, expected: int, current: int) -> None:
        super().__init__(f"version {expected} is stale; the current version is {current}")
        self.current = current


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


class TaskService:
    def __init__(self, log_: EventLog, projection: Projection, index: IdempotencyIndex, clock: Clock) -> None:
        self.log = log_
        self.projection = projection
        self.index = index
        self.clock = clock
        self._locks = KeyedLocks()

    async def execute(
        self,
        command: cmd.Command,
        actor: Actor,
        *,
        if_match: int | None = None,
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
    ) -> Answer:
        """Decide and append; DomainError, StaleVersion, Fenced and LogUnavailable append nothing."""
        if idempotency_key is None:
            return await self._execute(command, actor, if_match, None, correlation_id)
        async with self.index.locks((actor.user, idempotency_key)):
            if (answer := self.index.get(actor.user, idempotency_key)) is not None:
                return answer
            return await self._execute(command, actor, if_match, idempotency_key, correlation_id)

    async def _execute(self, command: cmd.Command, actor: Actor, if_match: int | None, key: str | None,
                       correlation_id: str | None) -> Answer:  # fmt: skip
        aggregate_id = getattr(command, command.target or command.creates or "", None) or "-"
        async with self._locks(aggregate_id):
            if if_match is not None and command.target is not None:
                current = self.projection.aggregates.get(aggregate_id)
                if current is not None and current.version != if_match:
                    raise StaleVersion(if_match, current.version)
            decided = decide(command, actor, self.projection)
            events = self._envelope(decided, actor, key, correlation_id)
            await self.log.append(events)
            for event in events:
                self.projection.apply(event)
                self.index.record(event)
        return answer_for(events)

    def _envelope(self, decided: Iterable[Any], actor: Actor, key: str | None,
                  correlation_id: str | None) -> list[CloudEvent]:  # fmt: skip
        now = self.clock()
        versions: dict[str, int] = {}
        events = []
        for data in decided:
            current = self.projection.aggregates.get(data.subject)
            versions[data.subject] = versions.get(data.subject, current.version if current else 0) + 1
            event = new_event(data, actor=actor.user, actordept=actor.department,
                              aggregateversion=versions[data.subject], correlationid=correlation_id,
                              causationid=events[-1].id if events else None, idempotencykey=key, time=now)  # fmt: skip
            correlation_id = event.correlationid
            events.append(event)
        return events

    async def reject(self, command_id: str, command_name: str, status: int, reason: str, *,
                     errors: Iterable[FieldError] = (), actor: Actor | None = None, idempotency_key: str,
                     correlation_id: str | None) -> Answer:  # fmt: skip
        """Appends ``command.rejected`` for a command from the command topic (once per key)."""
        user = actor.user if actor else "unauthenticated"
        if (answer := self.index.get(user, idempotency_key)) is not None:
            return answer
        rejected = CommandRejected(command_id=command_id, command=command_name, status=status, reason=reason,
                                   errors=tuple(errors))  # fmt: skip
        event = new_event(rejected, actor=user, actordept=actor.department if actor else None,
                          correlationid=correlation_id, idempotencykey=idempotency_key, time=self.clock())  # fmt: skip
        await self.log.append([event])
        self.index.record(event)
        return answer_for([event])


# --- reading ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskFilter:
    department: str | None = None
    field: str | None = None
    status: TaskStatus | None = None
    overdue: bool | None = None


def visible(task: Task, actor: Actor) -> bool:
    return reads_everything(actor) or task.responsible(actor.department)


def list_tasks(projection: Projection, actor: Actor, where: TaskFilter, now: datetime, *, limit: int,
               cursor: str | None) -> tuple[list[Task], str | None]:  # fmt: skip
    """One page of the tasks the actor may see, in creation order; the next page's cursor."""
    after = decode_cursor(cursor) if cursor else None
    matching = sorted(
        (t for t in projection.tasks() if visible(t, actor) and _matches(t, where, now)),
        key=_order,
    )
    if after is not None:
        matching = [t for t in matching if _order(t) > after]
    page = matching[:limit]
    next_cursor = encode_cursor(_order(page[-1])) if len(matching) > limit else None
    return page, next_cursor


def _matches(task: Task, where: TaskFilter, now: datetime) -> bool:
    return (
        (where.department is None or task.responsible(where.department))
        and (where.field is None or task.field == where.field)
        and (where.status is None or task.status is where.status)
        and (where.overdue is None or task.is_overdue(now) == where.overdue)
    )


def _order(task: Task) -> tuple[str, str]:
    return (task.created_at.isoformat(), task.task_id)


def encode_cursor(position: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(position))).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        created, task_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return (str(created), str(task_id))
    except (ValueError, TypeError) as error:
        raise ValueError("not a cursor this service issued") from error


def task_history(projection: Projection, task_id: str) -> list[CloudEvent]:
    """Every event about the task (its issues', approvals' and evaluations' too), in time order."""
    return sorted(projection.history.get(task_id, ()), key=lambda e: (e.time, e.aggregateversion or 0, e.id))


# --- the command topic --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandRecord:
    """A record from ``policy.commands``: the command's name, the caller's token and its body."""

    command_id: str
    name: str
    token: str
    body: dict[str, Any]
    correlation_id: str | None
    idempotency_key: str
    if_match: int | None

    @property
    def correlationid(self) -> str | None:  # what the consumer runner's logs carry
        return self.correlation_id


COMMAND_HEADERS = ("command", "authorization", "correlationid", "idempotency-key", "if-match")


def parse_command_record(record: ConsumerRecord) -> CommandRecord | DecodeFailure:
    """A malformed record (no command name, not a JSON object, headers that cannot be read
    one way only) is a dead letter, not a rejection."""

    def failure(reason: str) -> DecodeFailure:
        return DecodeFailure(reason, record.key, record.value, tuple(record.headers))

    headers: dict[str, str] = {}
    for raw_name, raw_value in record.headers:
        name = raw_name.lower()
        if name not in COMMAND_HEADERS:
            continue
        if name in headers:
            return failure(f"malformed command headers: {name} appears twice")
        if raw_value is None:
            return failure(f"malformed command headers: {name} has no value")
        try:
            headers[name] = raw_value.decode()
        except UnicodeDecodeError as error:
            return failure(f"malformed command headers: {name} is not UTF-8: {error}")
    name = headers.get("command", "")
    if not name:
        return failure("no command header")
    try:
        if_match = parse_if_match(headers["if-match"]) if "if-match" in headers else None
    except ValueError as error:
        return failure(f"malformed command headers: if-match: {error}")
    try:
        body = orjson.loads(record.value or b"")
    except orjson.JSONDecodeError as error:
        return failure(f"command body is not JSON: {error}")
    if not isinstance(body, dict):
        return failure("command body is not a JSON object")
    command_id = f"{record.topic}:{record.partition}:{record.offset}"
    token = headers.get("authorization", "").removeprefix("Bearer ").strip()
    return CommandRecord(command_id=command_id, name=name, token=token, body=body,
                         correlation_id=headers.get("correlationid"),
                         idempotency_key=headers.get("idempotency-key") or f"command:{command_id}",
                         if_match=if_match)  # fmt: skip


async def handle_command_record(service: TaskService, verifier: TokenVerifier, command: CommandRecord) -> Answer:
    """Each command yields its events, or one ``command.rejected`` saying why."""

    async def reject(status: int, reason: str, actor: Actor | None = None, errors: Iterable[FieldError] = ()):
        return await service.reject(command.command_id, command.name, status, reason, errors=errors, actor=actor,
                                    idempotency_key=command.idempotency_key,
                                    correlation_id=command.correlation_id)  # fmt: skip

    try:
        actor = verifier.verify(command.token)
    except AuthError as error:
        return await reject(401, f"unauthenticated: {error}")
    command_class = cmd.COMMANDS.get(command.name)
    if command_class is None:
        return await reject(422, f"unknown command {command.name!r}", actor,
                            [FieldError(field="command", message=f"one of {', '.join(sorted(cmd.COMMANDS))}")])
    body = dict(command.body)
    if command_class.creates and command_class.creates not in body:
        body[command_class.creates] = new_id(command_class.creates.removesuffix("_id"))
    try:
        parsed = command_class.model_validate(body)
    except ValidationError as error:
        errors = [FieldError(**e) for e in field_errors(list(error.errors()))]
        return await reject(422, "; ".join(f"{e.field}: {e.message}" for e in errors[:5]), actor, errors)
    try:
        return await service.execute(parsed, actor, if_match=command.if_match, idempotency_key=command.idempotency_key,
                                     correlation_id=command.correlation_id)  # fmt: skip
    except DomainError as error:
        field = [FieldError(field=error.field, message=error.detail)] if error.field else []
        return await reject(error.status, error.detail, actor, field)
    except StaleVersion as error:
        return await reject(412, str(error), actor)


def utc_now() -> datetime:
    return datetime.now(UTC)
