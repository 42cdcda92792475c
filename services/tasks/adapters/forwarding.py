"""With several tasks instances: an HTTP command for an aggregate another instance decides goes
to that instance as a record on ``policy.commands``, on its aggregate's partition, carrying the
verified actor under this instance's writer's proof (never the caller's token); the caller is
answered once the outcome (its events or its ``command.rejected``) is read back from the log."""

from __future__ import annotations

import asyncio
import uuid

import orjson

from services.tasks.adapters.follower import Outcomes
from services.tasks.application.answers import Answer, KeyReused, answer_for
from services.tasks.application.service import IdempotencyKey, Ownership, TaskService
from services.tasks.domain import commands as cmd
from shared.auth import Actor
from shared.contract.topics import COMMANDS
from shared.http.idempotency import fingerprint
from shared.kafka.producer import EventProducer
from shared.provenance.acts import SignedAct


class Forwarded:
    """The headers of a command one tasks instance sends on to another, under its own proof."""

    ACTOR = "actor"
    DEPARTMENT = "actor-department"
    ROLES = "actor-roles"
    SIGNED = "signed-command"
    CREATED = "created-id"
    """The id a create command drew on its first instance, so every hop creates the same aggregate."""
    DIGEST = "request-digest"


def forwarded_headers(
    name: str,
    actor: Actor,
    idempotency: IdempotencyKey,
    *,
    if_match: int | None,
    correlation_id: str | None,
    act: SignedAct | None,
    created_id: str | None,
) -> list[tuple[str, bytes | None]]:
    """What a command forwarded to its owner carries: the verified actor (the record is sealed
    by this instance's writer's proof), never anyone's token."""
    headers = [
        ("command", name),
        (Forwarded.ACTOR, actor.user),
        (Forwarded.DEPARTMENT, str(actor.department)),
        (Forwarded.ROLES, ",".join(sorted(actor.roles))),
        ("idempotency-key", idempotency.key),
        (Forwarded.DIGEST, idempotency.digest),
    ]
    if if_match is not None:
        headers.append(("if-match", f'"{if_match}"'))
    if correlation_id is not None:
        headers.append(("correlationid", correlation_id))
    if act is not None:
        headers.append((Forwarded.SIGNED, act.encode()))
    if created_id is not None:
        headers.append((Forwarded.CREATED, created_id))
    return [(name, value.encode()) for name, value in headers]


class ForwardTimedOut(Exception):
    """The owner did not answer in time (it may be moving): the command may still be carried
    out, so a retry must carry the same Idempotency-Key."""


class Forwarder:
    def __init__(
        self,
        producer: EventProducer,
        outcomes: Outcomes,
        ownership: Ownership,
        service: TaskService,
        timeout_seconds: float,
    ) -> None:
        self._producer = producer
        self._outcomes = outcomes
        self._ownership = ownership
        self._service = service
        self._timeout = timeout_seconds

    async def forward(
        self,
        command: cmd.Command,
        actor: Actor,
        act: SignedAct | None,
        *,
        if_match: int | None,
        idempotency: IdempotencyKey | None,
        correlation_id: str | None,
    ) -> Answer:
        body = command.model_dump(mode="json")
        key = idempotency or IdempotencyKey(f"forwarded:{uuid.uuid4().hex}", fingerprint("COMMAND", command.name, body))
        remembered = self._service.index.get(actor.user, key.key)
        if remembered is not None:
            if remembered.digest is not None and remembered.digest != key.digest:
                raise KeyReused()
            return remembered.answer
        headers = forwarded_headers(
            command.name, actor, key, if_match=if_match, correlation_id=correlation_id, act=act, created_id=None
        )
        outcome = self._outcomes.expect(actor.user, key.key)  # before sending: the answer may come at once
        try:
            await self._producer.send(
                COMMANDS,
                orjson.dumps(body),
                key=command.subject_id.encode(),
                headers=headers,
                partition=self._ownership.partition_of(command.subject_id),
            )
            async with asyncio.timeout(self._timeout):
                events = await outcome
        except TimeoutError as error:
            raise ForwardTimedOut(f"the owner of this aggregate did not answer within {self._timeout:g} s") from error
        finally:
            self._outcomes.forget(actor.user, key.key)
        return answer_for(events)
