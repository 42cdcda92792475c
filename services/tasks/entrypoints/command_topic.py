"""Commands from ``policy.commands``. A departmental system's record carries the command as
JSON, signed by the department's registered key (a detached JWS in the ``signature`` header,
``shared/provenance/acts.py``); a record another tasks instance forwarded carries the verified
actor in headers under the tasks service's own writer's proof. No bearer token is ever taken
from the topic. Every well-formed command ends in its events or in exactly one
``command.rejected`` saying why; a malformed record is a dead letter.

An append the log does not acknowledge is retried until it is, never dead-lettered; an
instance that finds itself fenced stops consuming at once, leaving the command uncommitted
for the instance that fenced it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from pydantic import ValidationError

from services.tasks.adapters.event_log import Fenced, LogUnavailable
from services.tasks.adapters.forwarding import Forwarded, forwarded_headers
from services.tasks.application.answers import (
    Answer,
    KeyInFlight,
    KeyReused,
    NotOwner,
    StaleVersion,
)
from services.tasks.application.service import IdempotencyKey, TaskService, new_id
from services.tasks.domain import commands as cmd
from services.tasks.domain.decide import Refused
from services.tasks.entrypoints.statuses import KEY_REUSED, STALE_VERSION, UNAUTHENTICATED
from shared.auth import Actor
from shared.contract.catalog import FieldError
from shared.contract.codec import DecodeFailure
from shared.contract.codes import Department, Role
from shared.contract.topics import COMMANDS
from shared.http.idempotency import MAX_KEY, fingerprint
from shared.http.preconditions import parse_if_match
from shared.http.problems import REFUSAL_STATUS, field_errors
from shared.kafka.connection import client_options
from shared.kafka.consumer import PartitionMoved, StopConsuming
from shared.kafka.producer import EventProducer
from shared.logging import get_logger
from shared.provenance.acts import SIGNATURE_HEADER, BadSignature, SignedAct, verify_command
from shared.provenance.gate import ProofGate
from shared.provenance.keys import TrustStore
from shared.provenance.seals import PROOF_HEADER
from shared.retrying import APPENDING, FORWARDING, RetryPolicy
from shared.settings import KafkaSettings
from shared.supervision import Health

log = get_logger(__name__)


COMMAND_HEADERS = (
    "command",
    "authorization",
    "correlationid",
    "idempotency-key",
    "if-match",
    SIGNATURE_HEADER,
    Forwarded.ACTOR,
    Forwarded.DEPARTMENT,
    Forwarded.ROLES,
    Forwarded.SIGNED,
    Forwarded.CREATED,
    Forwarded.DIGEST,
)


@dataclass(frozen=True)
class Unauthenticated:
    """Why a command's author is not known: it is rejected, once, with 401."""

    reason: str


@dataclass(frozen=True)
class CommandRecord:
    """A record from ``policy.commands``: the command, who acts (or why nobody is known to), and
    the department's signature the events will keep."""

    command_id: str
    partition: int
    name: str
    body: dict[str, Any]
    raw_body: bytes
    correlation_id: str | None
    idempotency: IdempotencyKey
    if_match: int | None
    author: Actor | Unauthenticated
    act: SignedAct | None = None
    created_id: str | None = None
    drawn_for: str | None = None
    """What a create command's new id is drawn from when it carries none: the record, so that
    reading it again (after a crash before its offset was committed) draws the same id."""

    @property
    def correlationid(self) -> str | None:  # what the consumer runner's logs carry
        return self.correlation_id


@dataclass(frozen=True)
class Author:
    """Who acts in a command, as its record proves it, and what the proof says of the command."""

    actor: Actor | Unauthenticated
    act: SignedAct | None = None
    name: str | None = None
    idempotency_key: str | None = None
    correlation_id: str | None = None
    if_match: int | None = None
    created_id: str | None = None


TOKENS_REFUSED = Unauthenticated(
    "bearer tokens are not accepted on policy.commands (the record is deleted once answered): "
    "sign the command with the department's registered key"
)
UNSIGNED = Unauthenticated("a command on policy.commands is signed with its department's registered key")


class CommandParser:
    """Reads a command record and authenticates it: a department's signature, or a tasks
    instance's writer's proof on a forwarded command. A malformed record (no command name, not
    a JSON object, headers that cannot be read one way only) is a dead letter, not a rejection."""

    def __init__(self, trust: TrustStore) -> None:
        self._trust = trust

    def __call__(self, record: ConsumerRecord) -> CommandRecord | DecodeFailure:
        headers = _command_headers(record)
        if isinstance(headers, str):
            return self._failure(record, f"malformed command headers: {headers}")
        raw_body = record.value or b""
        try:
            body = orjson.loads(raw_body)
        except orjson.JSONDecodeError as error:
            return self._failure(record, f"command body is not JSON: {error}")
        if not isinstance(body, dict):
            return self._failure(record, "command body is not a JSON object")
        try:
            if_match = parse_if_match(headers["if-match"]) if "if-match" in headers else None
        except ValueError as error:
            return self._failure(record, f"malformed command headers: if-match: {error}")
        author = self._author(record, headers, raw_body)
        name = author.name or headers.get("command", "")
        if not name:
            return self._failure(record, "no command header")
        command_id = f"{record.topic}:{record.partition}:{record.offset}"
        # A forwarded command carries its first request's fingerprint, so that the same
        # Idempotency-Key means the same request on every instance.
        digest = headers.get(Forwarded.DIGEST) or fingerprint("COMMAND", name, body)
        key = author.idempotency_key or headers.get("idempotency-key") or f"command:{command_id}"
        return CommandRecord(
            command_id=command_id,
            partition=record.partition,
            name=name,
            body=body,
            raw_body=raw_body,
            correlation_id=author.correlation_id or headers.get("correlationid"),
            idempotency=IdempotencyKey(key, digest),
            if_match=author.if_match if author.if_match is not None else if_match,
            author=author.actor,
            act=author.act,
            created_id=author.created_id,
            drawn_for=f"{command_id}@{record.timestamp}",
        )

    @staticmethod
    def _failure(record: ConsumerRecord, reason: str) -> DecodeFailure:
        return DecodeFailure(reason, record.key, record.value, tuple(record.headers))

    def _author(self, record: ConsumerRecord, headers: dict[str, str], body: bytes) -> Author:
        if "authorization" in headers:
            return Author(TOKENS_REFUSED)
        if SIGNATURE_HEADER in headers:
            try:
                signed = verify_command(
                    headers[SIGNATURE_HEADER].encode(), body, self._trust, at=record.timestamp / 1000
                )
            except BadSignature as error:
                return Author(Unauthenticated(f"the command's signature does not hold: {error}"))
            return Author(
                Actor(user=signed.user, department=signed.department, roles=signed.roles),
                signed.act,
                signed.name,
                signed.idempotency_key,
                signed.correlation_id,
                signed.if_match,
            )
        if any(name == PROOF_HEADER for name, _ in record.headers):
            return self._forwarded(record, headers)
        return Author(UNSIGNED)

    def _forwarded(self, record: ConsumerRecord, headers: dict[str, str]) -> Author:
        """Who acts in a command another tasks instance forwarded, if its proof is the tasks service's."""
        [(_, verdict)] = ProofGate(self._trust, {COMMANDS: {"tasks"}}).admit([record], complete=True)
        if not verdict.ok:
            return Author(Unauthenticated(f"a forwarded command whose writer's proof fails: {verdict.refusal}"))
        try:
            actor = Actor(
                user=headers[Forwarded.ACTOR],
                department=Department(headers[Forwarded.DEPARTMENT]),
                roles=frozenset(Role(role) for role in headers.get(Forwarded.ROLES, "").split(",") if role),
            )
            act = SignedAct.decode(headers[Forwarded.SIGNED]) if Forwarded.SIGNED in headers else None
        except (KeyError, ValueError, BadSignature) as error:
            return Author(Unauthenticated(f"a forwarded command without a readable actor: {error!r}"))
        return Author(actor, act, created_id=headers.get(Forwarded.CREATED))


def _command_headers(record: ConsumerRecord) -> dict[str, str] | str:
    """The command headers of the record, or why they cannot be read one way only."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in record.headers:
        name = raw_name.lower()
        if name not in COMMAND_HEADERS:
            continue
        if name in headers:
            return f"{name} appears twice"
        if raw_value is None:
            return f"{name} has no value"
        try:
            headers[name] = raw_value.decode()
        except UnicodeDecodeError as error:
            return f"{name} is not UTF-8: {error}"
    if len(headers.get("idempotency-key", "")) > MAX_KEY:
        return f"idempotency-key is over {MAX_KEY} characters"
    return headers


class TokenPurge:
    """Records that carried a bearer token (sent before commands were signed) are deleted from
    ``policy.commands`` once answered or dead-lettered: a token kept on a topic can be replayed
    by anyone who reads it until it expires. A partition is cut only up to the group's committed
    offset, so nothing that was not handled yet is ever deleted."""

    def __init__(self, kafka: KafkaSettings, group_id: str) -> None:
        self._kafka, self.group_id = kafka, group_id
        self._noted: dict[TopicPartition, int] = {}

    def note(self, topic: str, partition: int, offset: int, headers: Iterable[tuple[str, bytes | None]]) -> None:
        if any(name.lower() == "authorization" for name, _ in headers):
            where = TopicPartition(topic, partition)
            self._noted[where] = max(self._noted.get(where, -1), offset)

    async def sweep(self) -> int:
        """Deletes what it may; returns how many partitions it cut."""
        if not self._noted:
            return 0
        admin = AIOKafkaAdminClient(**client_options(self._kafka))
        await admin.start()
        try:
            committed = await admin.list_consumer_group_offsets(self.group_id, partitions=list(self._noted))
            cuts = {
                tp: RecordsToDelete(offset + 1)
                for tp, offset in self._noted.items()
                if tp in committed and committed[tp].offset > offset
            }
            if cuts:
                await admin.delete_records(cuts)
        finally:
            await admin.close()
        for tp in cuts:
            log.warning("deleted command records that carried a bearer token", partition=tp.partition)
            del self._noted[tp]
        return len(cuts)


class PurgingDeadLetters:
    """Dead letters as the producer writes them (tokens stripped), then the token-bearing
    original deleted from the command topic."""

    def __init__(self, producer: EventProducer, purge: TokenPurge) -> None:
        self._producer, self._purge = producer, purge

    async def dead_letter(
        self, failure: DecodeFailure, *, topic: str, partition: int, offset: int, consumer: str
    ) -> object:
        written = await self._producer.dead_letter(
            failure, topic=topic, partition=partition, offset=offset, consumer=consumer
        )
        self._purge.note(topic, partition, offset, failure.headers)
        return written


class Misrouted(Exception):
    """The record is on another partition than the aggregate it commands."""

    def __init__(self, subject_id: str, partition: int, created_id: str | None) -> None:
        super().__init__(f"{subject_id} is decided on partition {partition}")
        self.subject_id, self.partition, self.created_id = subject_id, partition, created_id


class CommandTopicHandler:
    """Handles one command record for the consumer runner."""

    def __init__(
        self,
        service: TaskService,
        health: Callable[[], Health | None],
        purge: TokenPurge,
        forwarding: EventProducer | None = None,
        appending: RetryPolicy = APPENDING,
        forwarding_retries: RetryPolicy = FORWARDING,
    ) -> None:
        self._purge = purge
        self._forwarding = forwarding
        """With several instances: where a misrouted record is sent on to its partition."""
        self._service = service
        self._health = health
        self._appending, self._forwarding_retries = appending, forwarding_retries

    async def __call__(self, command: CommandRecord, record: ConsumerRecord) -> None:
        try:
            await self._until_appended(lambda: self.answer(command))
        except Misrouted as misrouted:
            await self._forward(command, misrouted)
        except NotOwner as error:
            raise PartitionMoved(str(error)) from error
        self._purge.note(record.topic, record.partition, record.offset, record.headers)

    async def _forward(self, command: CommandRecord, misrouted: Misrouted) -> None:
        """A record keyed otherwise than by its aggregate goes on to the partition that decides
        it: with the verified actor, its idempotency key, and the id a create command drew here.
        A forward that keeps failing is answered here, with one rejection, so that the sender
        learns of it (a dead letter tells only the operators)."""
        assert self._forwarding is not None and isinstance(command.author, Actor)
        headers = forwarded_headers(
            command.name,
            command.author,
            command.idempotency,
            if_match=command.if_match,
            correlation_id=command.correlation_id,
            act=command.act,
            created_id=misrouted.created_id,
        )
        try:
            async for attempt in self._forwarding_retries.on(Exception):
                with attempt:
                    try:
                        await self._forwarding.send(
                            COMMANDS,
                            command.raw_body,
                            key=misrouted.subject_id.encode(),
                            headers=headers,
                            partition=misrouted.partition,
                        )
                    except Exception as error:
                        log.warning(
                            "command not forwarded yet",
                            partition=misrouted.partition,
                            attempt=attempt.num,
                            error=repr(error),
                        )
                        raise
            log.info("command forwarded to its aggregate's partition", partition=misrouted.partition)
            return
        except Exception as error:  # whatever stops the forward, the command is still answered
            failure = error
        # Recorded under the record's own key: the same signed command sent again may still go through.
        actor, own = command.author, IdempotencyKey(f"command:{command.command_id}", command.idempotency.digest)
        reason = (
            f"the command could not be forwarded to partition {misrouted.partition}, "
            f"which decides {misrouted.subject_id}: {failure!r}"
        )
        await self._until_appended(lambda: self._reject(command, 503, reason[:2000], actor, idempotency=own))

    async def _until_appended(self, appended: Callable[[], Awaitable[Answer]]) -> Answer:
        waited = False
        async for attempt in self._appending.on((LogUnavailable, KeyInFlight)):
            with attempt:
                try:
                    answer = await appended()
                except Fenced as error:
                    if self._service.ownership is not None:  # one partition's writer: it moved away
                        raise PartitionMoved(str(error)) from error
                    raise StopConsuming(str(error)) from error
                except (LogUnavailable, KeyInFlight) as error:
                    waited = True
                    if (health := self._health()) is not None:
                        health.failed(f"command waiting to be appended: {error}")
                    log.warning("command not appended yet; retrying", error=str(error), attempt=attempt.num)
                    raise
                if waited and (health := self._health()) is not None:
                    health.healthy()
                return answer
        raise AssertionError("the attempts end only by an answer or a failure of another kind")

    async def answer(self, command: CommandRecord) -> Answer:
        """The command's events, or its one rejection. Fenced and LogUnavailable propagate."""
        actor = command.author
        if isinstance(actor, Unauthenticated):
            return await self._reject(command, UNAUTHENTICATED, f"unauthenticated: {actor.reason}")
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
            prefix = command_class.creates.removesuffix("_id")
            body[command_class.creates] = command.created_id or new_id(prefix, command.drawn_for)
        try:
            parsed = command_class.model_validate(body)
        except ValidationError as error:
            errors = [FieldError(**e) for e in field_errors(error.errors())]
            return await self._reject(
                command, 422, "; ".join(f"{e.field}: {e.message}" for e in errors[:5]), actor, errors
            )
        ownership = self._service.ownership
        if ownership is not None and (owner := ownership.partition_of(parsed.subject_id)) != command.partition:
            created = body.get(command_class.creates) if command_class.creates else None
            raise Misrouted(parsed.subject_id, owner, created)
        return await self._service.execute(
            parsed,
            actor,
            if_match=command.if_match,
            idempotency=command.idempotency,
            correlation_id=command.correlation_id,
            act=command.act,
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
