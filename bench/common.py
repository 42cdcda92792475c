"""What the benchmarks share: throw-away topics on the real broker and how figures are printed."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.settings import KafkaSettings


@asynccontextmanager
async def bench_topic(kafka: KafkaSettings, partitions: int = 3) -> AsyncIterator[str]:
    """A topic for one benchmark run, deleted afterwards so the real topics stay clean."""
    name = f"bench.{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        yield name
    finally:
        await admin.delete_topics([name])
        await admin.close()


@dataclass
class Timed:
    count: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


class stopwatch:
    def __init__(self, result: Timed) -> None:
        self.result = result

    def __enter__(self) -> Timed:
        self._start = time.perf_counter()
        return self.result

    def __exit__(self, *exc: object) -> None:
        self.result.seconds = time.perf_counter() - self._start
