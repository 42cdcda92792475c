"""Commands from ``policy.commands``: a departmental system's record names the command, carries
its token and the command as JSON. Every well-formed command ends in its events or in exactly
one ``command.rejected`` saying why; a malformed record is a dead letter.

An append the log does not acknowledge is retried until it is, never dead-lettered; an
instance that finds itself fenced stops consuming at once, leaving the command uncommitted
for the instance that fenced it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import ConsumerRecord
from pydantic import ValidationError

from services.tasks.adapters.event_log import Fenced, LogUnavailable
from services.tasks.adapters.idempotency import fingerprint
from services.tasks.answers import (
    KEY_REUSED,
    STALE_VERSION,
    UNAUTHENTICATED,
    Answer,
    KeyInFlight,
    KeyReused,
    NotOwner,
    StaleVersion,
)
from services.tasks.application import IdempotencyKey, TaskService, new_id
from services.tasks.domain import commands as cmd
from services.tasks.domain.decide import Refused
from shared.auth import Actor, AuthError, TokenVerifier
from shared.contract.catalog import FieldError
from shared.contract.codec import DecodeFailure
from shared.http.preconditions import parse_if_match
from shared.http.problems import REFUSAL_STATUS, field_errors
from shared.kafka.consumer import PartitionMoved, StopConsuming
from shared.kafka.producer import EventProducer
from shared.logging import get_logger
from shared.supervision import Backoff, Health

log = get_logger(__name__)
COMMAND_HEADERS = ("command", "authorization", "correlationid", "idempotency-key", "if-match", "request-digest")
MAX_KEY = 255
APPEND_RETRIES = Backoff(base_seconds=0.2, max_seconds=10)


@dataclass(frozen=True)
class CommandRecord:
    """A record from ``policy.commands``: the command's name, the caller's token and its body."""

    command_id: str
    partition: int
    name: str
    token: str
    body: dict[str, Any]
    correlation_id: str | None
    idempotency: IdempotencyKey
    if_match: int | None

    @property
    def correlationid(self) -> str | None:  # what the consumer runner's logs carry
        return self.correlation_id


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
    if len(headers.get("idempotency-key", "")) > MAX_KEY:
        return failure(f"malformed command headers: idempotency-key is over {MAX_KEY} characters")
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
    key = headers.get("idempotency-key") or f"command:{command_id}"
    # A command forwarded from another instance's HTTP edge carries that request's fingerprint,
    # so that the same Idempotency-Key means the same request on every instance.
    digest = headers.get("request-digest") or fingerprint("COMMAND", name, body)
    return CommandRecord(
        command_id=command_id,
        partition=record.partition,
        name=name,
        token=headers.get("authorization", "").removeprefix("Bearer ").strip(),
        body=body,
        correlation_id=headers.get("correlationid"),
        idempotency=IdempotencyKey(key, digest),
        if_match=if_match,
    )


class Misrouted(Exception):
    """The record is on another partition than the aggregate it commands."""

    def __init__(self, subject_id: str, partition: int) -> None:
        super().__init__(f"{subject_id} is decided on partition {partition}")
        self.subject_id, self.partition = subject_id, partition


class CommandTopicHandler:
    """Handles one command record for the consumer runner."""

    def __init__(
        self,
        service: TaskService,
        verifier: TokenVerifier,
        health: Callable[[], Health | None],
        backoff: Backoff = APPEND_RETRIES,
        forwarding: EventProducer | None = None,
    ) -> None:
        self._forwarding = forwarding
        """With several instances: where a misrouted record is sent on to its partition."""
        self._service = service
        self._verifier = verifier
        self._health = health
        self._backoff = backoff

    async def __call__(self, command: CommandRecord, record: ConsumerRecord) -> None:
        try:
            await self._until_appended(lambda: self.answer(command))
        except Misrouted as misrouted:
            await self._forward(record, misrouted.subject_id, misrouted.partition)
        except NotOwner as error:
            raise PartitionMoved(str(error)) from error

    async def _forward(self, record: ConsumerRecord, subject_id: str, partition: int) -> None:
        """A record keyed otherwise than by its aggregate goes on to the partition that decides it."""
        assert self._forwarding is not None
        log.info("command forwarded to its aggregate's partition", partition=partition)
        headers = [(name, value) for name, value in record.headers if value is not None]
        await self._forwarding.send(
            record.topic, record.value or b"", key=subject_id.encode(), headers=headers, partition=partition
        )

    async def _until_appended(self, attempt: Callable[[], Awaitable[Answer]]) -> Answer:
        failures = 0
        while True:
            try:
                answer = await attempt()
            except Fenced as error:
                if self._service.ownership is not None:  # one partition's writer: it moved away
                    raise PartitionMoved(str(error)) from error
                raise StopConsuming(str(error)) from error
            except (LogUnavailable, KeyInFlight) as error:
                failures += 1
                if (health := self._health()) is not None:
                    health.failed(f"command waiting to be appended: {error}")
                log.warning("command not appended yet; retrying", error=str(error), failures=failures)
                await asyncio.sleep(self._backoff.delay(failures))
                continue
            if failures and (health := self._health()) is not None:
                health.healthy()
            return answer

    async def answer(self, command: CommandRecord) -> Answer:
        """The command's events, or its one rejection. Fenced and LogUnavailable propagate."""
        try:
            actor = self._verifier.verify(command.token)
        except AuthError as error:
            return await self._reject(command, UNAUTHENTICATED, f"unauthenticated: {error}")
        try:
            return await self._execute(command, actor)
        except (Fenced, LogUnavailable, KeyInFlight, NotOwner, Misrouted):
            raise
        except Refused as error:
            field = [FieldError(field=error.field, message=error.detail)] if error.field else []
            return await self._reject(command, REFUSAL_STATUS[error.kind], error.detail, actor, field)
        except StaleVersion as error:
            return await self._reject(command, STALE_VERSION, str(error), actor)
        except KeyReused as error:
            # Recorded under the record's own key: the reused one already answers the first command.
            own = IdempotencyKey(f"command:{command.command_id}", command.idempotency.digest)
            return await self._reject(
                command,
                KEY_REUSED,
                str(error),
                actor,
                [FieldError(field="idempotency-key", message=str(error))],
                idempotency=own,
            )
        except Exception as error:  # a bug must still answer the command, once
            log.exception("command could not be handled", command=command.name)
            return await self._reject(command, 500, f"the command could not be handled: {error!r}"[:2000], actor)

    async def _execute(self, command: CommandRecord, actor: Actor) -> Answer:
        command_class = cmd.COMMANDS.get(command.name)
        if command_class is None:
            return await self._reject(
                command,
                422,
                f"unknown command {command.name[:100]!r}",
                actor,
                [FieldError(field="command", message=f"one of {', '.join(sorted(cmd.COMMANDS))}")],
            )
        body = dict(command.body)
        if command_class.creates and command_class.creates not in body:
            body[command_class.creates] = new_id(command_class.creates.removesuffix("_id"))
        try:
            parsed = command_class.model_validate(body)
        except ValidationError as error:
            errors = [FieldError(**e) for e in field_errors(error.errors())]
            return await self._reject(
                command, 422, "; ".join(f"{e.field}: {e.message}" for e in errors[:5]), actor, errors
            )
        ownership = self._service.ownership
        if ownership is not None and (owner := ownership.partition_of(parsed.subject_id)) != command.partition:
            raise Misrouted(parsed.subject_id, owner)
        return await self._service.execute(
            parsed,
            actor,
            if_match=command.if_match,
            idempotency=command.idempotency,
            correlation_id=command.correlation_id,
        )

    async def _reject(
        self,
        command: CommandRecord,
        status: int,
        reason: str,
        actor: Actor | None = None,
        errors: Iterable[FieldError] = (),
        idempotency: IdempotencyKey | None = None,
    ) -> Answer:
        return await self._service.reject(
            command.command_id,
            command.name,
            status,
            reason,
            errors=errors,
            actor=actor,
            idempotency=idempotency or command.idempotency,
            correlation_id=command.correlation_id,
            partition=None if self._service.ownership is None else command.partition,
        )
