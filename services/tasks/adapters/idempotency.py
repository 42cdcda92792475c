"""Idempotency-Key as draft-ietf-httpapi-idempotency-key-header has it: per user and key, the
fingerprint of the first request and its answer, rebuilt from the log (each event carries the
key and the fingerprint), so they survive restarts."""

from __future__ import annotations

import asyncio
from contextlib import suppress
from dataclasses import dataclass

from services.tasks.application.answers import Answer, answer_body, answer_for
from shared.contract.envelope import AnyEvent


@dataclass(frozen=True)
class Remembered:
    digest: str | None
    answer: Answer


class IdempotencyIndex:
    """(user, Idempotency-Key) -> the first request's fingerprint and answer; and which keys
    are in flight right now."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, str], Remembered] = {}
        self._in_flight: dict[tuple[str, str], asyncio.Event] = {}
        self.changed: set[tuple[str, str]] = set()
        """Slots changed since a snapshot last took them."""

    def get(self, user: str, key: str) -> Remembered | None:
        return self._answers.get((user, key))

    def begin(self, user: str, key: str) -> bool:
        """Marks the key in flight; False when it already is."""
        if (user, key) in self._in_flight:
            return False
        self._in_flight[user, key] = asyncio.Event()
        return True

    def end(self, user: str, key: str) -> None:
        if (ended := self._in_flight.pop((user, key), None)) is not None:
            ended.set()

    async def settled(self, user: str, key: str, within: float) -> Remembered | None:
        """The answer of the request in flight under the key, once it ends within ``within``
        seconds; None when it is still in flight then, or ended without an answer."""
        if (flight := self._in_flight.get((user, key))) is not None:
            with suppress(TimeoutError):
                await asyncio.wait_for(flight.wait(), within)
        return self.get(user, key)

    def remembered(self, slots: set[tuple[str, str]]) -> list[tuple[str, str, Remembered]]:
        return [(user, key, self._answers[user, key]) for user, key in slots if (user, key) in self._answers]

    def answers(self) -> dict[tuple[str, str], Remembered]:
        return dict(self._answers)

    def extend(self, answers: dict[tuple[str, str], Remembered]) -> None:
        """Takes in another index's answers (a rebuild's part read other partitions): a key
        already answered here keeps its first answer."""
        for slot, remembered in answers.items():
            if slot not in self._answers:
                self._answers[slot] = remembered
                self.changed.add(slot)

    def restore(self, user: str, key: str, remembered: Remembered) -> None:
        """Takes back an answer a snapshot kept."""
        self._answers[user, key] = remembered

    def record(self, event: AnyEvent) -> None:
        if event.idempotencykey is None:
            return
        slot = (event.actor, event.idempotencykey)
        first = self._answers.get(slot)
        if first is not None and first.answer.body.get("id") == answer_body(event).get("id"):
            # a later event of the same command: same answer, newer version
            answer = Answer(first.answer.status, {**first.answer.body, "version": event.aggregateversion})
            self._answers[slot] = Remembered(first.digest, answer)
            self.changed.add(slot)
        elif first is None:
            self._answers[slot] = Remembered(event.requestdigest, answer_for([event]))
            self.changed.add(slot)
