"""A steady load of progress reports from several departments, as careful clients send them:
each with its own Idempotency-Key, retried with the same key until answered. Shared by the
reliability and chaos tests, which then look for every acknowledged key on the log, once."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from aiokafka import TopicPartition

from shared.contract import catalog as c
from shared.contract.codec import decode_record
from shared.contract.envelope import CloudEvent
from shared.contract.topics import EVENTS
from shared.settings import KafkaSettings
from tests.conftest import NDRC, SC, read_from, token

WRITERS = {"JILIN": "implementer", "MIIT": "supporter", "CHANGCHUN": "implementer", "MOFCOM": "supporter"}
"""The departments that send the load: two leads, each with a supporting department."""


async def tasks_with_deadlines(
    tasks_url: str, count: int, milestone_dues: Callable[[int], list[datetime]], title: str = "Load"
) -> tuple[dict[str, list[str]], set[str]]:
    """``count`` tasks, led by JILIN or CHANGCHUN in turn and supported by MIIT or MOFCOM, each
    with milestones due at ``milestone_dues(n)``: the tasks each writer works on, and the milestones."""
    owned: dict[str, list[str]] = {d: [] for d in WRITERS}
    milestones: set[str] = set()
    async with httpx.AsyncClient(base_url=tasks_url, timeout=30) as client:
        plan = (await client.post("/v1/plans", headers=SC, json={"title": "Plan"})).json()["id"]
        for n in range(count):
            lead, supporting = (("JILIN", "MIIT"), ("CHANGCHUN", "MOFCOM"))[n % 2]
            created = await client.post(
                "/v1/tasks",
                headers=token(f"u-{lead}", "JILIN", "implementer"),
                json={
                    "plan_id": plan,
                    "title": f"{title} task {n}",
                    "field": "trade",
                    "lead_department": lead,
                    "supporting_departments": [supporting],
                    "due": "2030-01-01T00:00:00Z",
                },
            )
            assert created.status_code == 201, created.text
            task = created.json()["id"]
            owned[lead].append(task)
            owned[supporting].append(task)
            for m, due in enumerate(milestone_dues(n)):
                milestone = await client.post(
                    f"/v1/tasks/{task}/milestones",
                    headers=token(f"u-{lead}", lead, "implementer"),
                    json={"title": f"Milestone {n}.{m}", "due": due.isoformat()},
                )
                assert milestone.status_code == 201, milestone.text
                milestones.add(milestone.json()["id"])
    return owned, milestones


async def subscribe_receiver(notifications_url: str, receiver_url: str) -> str:
    """The NDRC subscribes the receiver to every alert; the subscription's signing secret."""
    async with httpx.AsyncClient(base_url=notifications_url, timeout=30) as client:
        made = await client.post("/v1/subscriptions", headers=NDRC, json={"webhook_url": receiver_url})
        assert made.status_code == 201, made.text
        return str(made.json()["secret"])


class Load:
    """Writers that report progress steadily, each request with its own Idempotency-Key,
    retried with the same key until it is answered, as a careful client does. Given several
    instances, a writer moves to the next one when its instance is down or answers 503."""

    def __init__(self, url: str | list[str], tasks: dict[str, list[str]], prefix: str = "load") -> None:
        self.urls = [url] if isinstance(url, str) else url
        self.tasks, self.prefix = tasks, prefix
        self.acknowledged: set[str] = set()
        self._counted = 0
        self.retries = 0
        self.stop = asyncio.Event()
        self.answered: list[tuple[float, float, str]] = []
        """(when, seconds from the first attempt to the answer, task) per acknowledged command."""
        self.unexpected: list[str] = []
        """Answers a careful client cannot act on: a 5xx other than 503 with Retry-After."""

    def mark(self) -> None:
        self._counted = len(self.acknowledged)

    async def grown_by(self, count: int) -> bool:
        """Whether ``count`` more commands were acknowledged since ``mark()``."""
        return len(self.acknowledged) >= self._counted + count

    async def writer(self, department: str, role: str, *, instance: int = 0) -> None:
        headers = token(f"u-chaos-{department.lower()}", department, role)
        clients = [httpx.AsyncClient(base_url=url, timeout=10) for url in self.urls]
        try:
            n = 0
            while not self.stop.is_set():
                task = self.tasks[department][n % len(self.tasks[department])]
                key = f"{self.prefix}-{department}-{n}-{uuid.uuid4().hex[:6]}"
                started = time.monotonic()
                instance = await self._until_answered(clients, instance, task, {**headers, "Idempotency-Key": key}, n)
                self.answered.append((time.monotonic(), time.monotonic() - started, task))
                self.acknowledged.add(key)
                n += 1
                await asyncio.sleep(0.08)
        finally:
            for client in clients:
                await client.aclose()

    async def _until_answered(
        self, clients: list[httpx.AsyncClient], instance: int, task: str, headers: dict[str, str], n: int
    ) -> int:
        """The instance that answered, after as many retries (with the same key) as it took."""
        while True:
            try:
                response = await clients[instance].post(
                    f"/v1/tasks/{task}/progress", headers=headers, json={"percent": n % 100 + 1, "note": f"report {n}"}
                )
                if response.status_code == 200:
                    return instance
                if response.status_code >= 500 and not (
                    response.status_code == 503 and "retry-after" in response.headers
                ):
                    self.unexpected.append(f"{response.status_code}: {response.text[:300]}")
                else:
                    assert response.status_code in (409, 503), response.text  # in flight, or the log unavailable
            except httpx.TransportError:
                pass  # the instance is down: the same request again, with the same key
            instance = (instance + 1) % len(clients)
            self.retries += 1
            await asyncio.sleep(0.3)


async def log_of(kafka: KafkaSettings, topic: str) -> list[CloudEvent[Any]]:
    starts = {TopicPartition(topic, p): 0 for p in range(kafka.partitions)}
    records = await read_from(kafka, starts, until=lambda rs: False, timeout=5)
    return [e for e in map(decode_record, records) if isinstance(e, CloudEvent)]


async def keys_on_log(kafka: KafkaSettings, prefix: str) -> Counter[str]:
    """How many times each of the load's Idempotency-Keys is on the log."""
    return Counter(
        e.idempotencykey or ""
        for e in await log_of(kafka, EVENTS)
        if e.type == c.TaskProgressReported.event_type and (e.idempotencykey or "").startswith(f"{prefix}-")
    )
