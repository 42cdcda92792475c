"""Starting a Kafka client while no broker answers yet (a broker restarting as a service starts,
or a service started before its broker): retried with backoff for a while instead of exiting."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from aiokafka.errors import KafkaConnectionError

from shared.logging import get_logger
from shared.supervision import Backoff

log = get_logger(__name__)
PATIENCE_SECONDS = 120.0
RETRIES = Backoff(base_seconds=0.5, max_seconds=5)


class Startable(Protocol):
    async def start(self) -> Any: ...
    async def stop(self) -> Any: ...


Client = TypeVar("Client", bound=Startable)


async def started(make: Callable[[], Client], *, what: str, patience_seconds: float = PATIENCE_SECONDS) -> Client:
    """A fresh client from ``make``, started; a new one is made for each attempt, since an
    aiokafka client that failed to bootstrap is not started again."""
    deadline = time.monotonic() + patience_seconds
    failures = 0
    while True:
        client = make()
        try:
            await client.start()
            return client
        except KafkaConnectionError as error:
            with contextlib.suppress(Exception):
                await client.stop()
            failures += 1
            if time.monotonic() >= deadline:
                raise
            log.warning("no broker answers yet; retrying", client=what, failures=failures, error=str(error))
            await asyncio.sleep(RETRIES.delay(failures))
