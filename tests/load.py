"""A steady load of progress reports from several departments, as careful clients send them:
each with its own Idempotency-Key, retried with the same key until answered. Shared by the
reliability and chaos tests, which then look for every acknowledged key on the log, once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
from aiokafka import TopicPartition

from shared.contract import catalog as c
from shared.contract.codec import decode_record
from shared.contract.envelope import CloudEvent
from shared.contract.topics import EVENTS
from shared.settings import KafkaSettings
from tests.conftest import read_from, token


class Load:
    """Writers that report progress steadily, each request with its own Idempotency-Key,
    retried with the same key until it is answered, as a careful client does."""

    def __init__(self, url: str, tasks: dict[str, list[str]], prefix: str = "load") -> None:
        self.url, self.tasks, self.prefix = url, tasks, prefix
        self.acknowledged: set[str] = set()
        self._counted = 0
        self.retries = 0
        self.stop = asyncio.Event()

    def mark(self) -> None:
        self._counted = len(self.acknowledged)

    async def grown_by(self, count: int) -> bool:
        """Whether ``count`` more commands were acknowledged since ``mark()``."""
        return len(self.acknowledged) >= self._counted + count

    async def writer(self, department: str, role: str) -> None:
        headers = token(f"u-chaos-{department.lower()}", department, role)
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as client:
            n = 0
            while not self.stop.is_set():
                task = self.tasks[department][n % len(self.tasks[department])]
                key = f"{self.prefix}-{department}-{n}-{uuid.uuid4().hex[:6]}"
                await self._until_answered(client, task, {**headers, "Idempotency-Key": key}, n)
                self.acknowledged.add(key)
                n += 1
                await asyncio.sleep(0.08)

    async def _until_answered(self, client: httpx.AsyncClient, task: str, headers: dict[str, str], n: int) -> None:
        while True:
            try:
                response = await client.post(
                    f"/v1/tasks/{task}/progress", headers=headers, json={"percent": n % 100 + 1, "note": f"report {n}"}
                )
                if response.status_code == 200:
                    return
                assert response.status_code in (409, 503), response.text  # in flight, or the log unavailable
            except httpx.TransportError:
                pass  # the service is down: the same request again, with the same key
            self.retries += 1
            await asyncio.sleep(0.3)


async def log_of(kafka: KafkaSettings, topic: str) -> list[CloudEvent]:
    starts = {TopicPartition(topic, p): 0 for p in range(kafka.partitions)}
    records = await read_from(kafka, starts, until=lambda rs: False, timeout=5)
    return [e for e in map(decode_record, records) if isinstance(e, CloudEvent)]


async def keys_on_log(kafka: KafkaSettings, prefix: str) -> Counter[str]:
    """How many times each of the load's Idempotency-Keys is on the log."""
    return Counter(
        e.idempotencykey
        for e in await log_of(kafka, EVENTS)
        if e.type == c.TaskProgressReported.event_type and (e.idempotencykey or "").startswith(f"{prefix}-")
    )
