"""Starting a Kafka client while no broker answers yet (a broker restarting as a service starts,
or a service started before its broker): retried with backoff for a while instead of exiting."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from aiokafka.errors import KafkaConnectionError

from shared.logging import get_logger
from shared.retrying import BROKER_PATIENCE, RetryPolicy

log = get_logger(__name__)


class Startable(Protocol):
    async def start(self) -> Any: ...
    async def stop(self) -> Any: ...


Client = TypeVar("Client", bound=Startable)


async def started(make: Callable[[], Client], *, what: str, patience: RetryPolicy = BROKER_PATIENCE) -> Client:
    """A fresh client from ``make``, started; a new one is made for each attempt, since an
    aiokafka client that failed to bootstrap is not started again."""
    async for attempt in patience.on(KafkaConnectionError):
        with attempt:
            client = make()
            try:
                await client.start()
            except KafkaConnectionError as error:
                with contextlib.suppress(Exception):
                    await client.stop()
                log.warning("no broker answers yet; retrying", client=what, attempt=attempt.num, error=str(error))
                raise
            return client
    raise AssertionError("stamina gives up by raising the last failure")
