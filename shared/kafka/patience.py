"""Starting a Kafka client, or asking the broker, while no broker answers (a broker restarting
as a service starts, or a service started before its broker): retried with backoff for a while
instead of exiting."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from aiokafka.errors import KafkaConnectionError

from shared.logging import get_logger
from shared.retrying import BROKER_PATIENCE, Failures, RetryPolicy

log = get_logger(__name__)


class Startable(Protocol):
    async def start(self) -> Any: ...
    async def stop(self) -> Any: ...


Client = TypeVar("Client", bound=Startable)
Answer = TypeVar("Answer")


async def answered(
    ask: Callable[[], Awaitable[Answer]],
    *,
    what: str,
    failures: Failures = KafkaConnectionError,
    patience: RetryPolicy = BROKER_PATIENCE,
) -> Answer:
    """``ask()``'s answer, asked again with backoff while no broker answers (``failures``)."""
    async for attempt in patience.on(failures):
        with attempt:
            try:
                return await ask()
            except failures as error:
                log.warning("no broker answers yet; retrying", client=what, attempt=attempt.num, error=str(error))
                raise
    raise AssertionError("stamina gives up by raising the last failure")


async def started(make: Callable[[], Client], *, what: str, patience: RetryPolicy = BROKER_PATIENCE) -> Client:
    """A fresh client from ``make``, started; a new one is made for each attempt, since an
    aiokafka client that failed to bootstrap is not started again."""

    async def start() -> Client:
        client = make()
        try:
            await client.start()
        except KafkaConnectionError:
            with contextlib.suppress(Exception):
                await client.stop()
            raise
        return client

    return await answered(start, what=what, patience=patience)
