"""Webhook delivery by the Standard Webhooks specification, one queue per subscriber.

Each subscriber has its own queue and workers, so a slow or dead one never delays the
others. A delivery is retried with exponential backoff and jitter for the retry period;
then a ``delivery_failed`` alert and a dead-letter record say so. The ``webhook-id`` is the
alert id, the same on every attempt, so receivers can drop repeats.
"""

from __future__ import annotations

import asyncio
import random
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from prometheus_client import Counter, Gauge
from standardwebhooks.webhooks import Webhook

from services.notifications.adapters.addresses import AddressPolicy, Resolver, VettedTransport, refused, system_resolver
from services.notifications.domain.subscriptions import Subscription
from shared.contract import catalog as c
from shared.contract.codec import STRUCTURED, DecodeFailure, encode, to_structured
from shared.contract.envelope import CloudEvent, new_event
from shared.kafka.producer import EventProducer
from shared.logging import get_logger

log = get_logger(__name__)
ACTOR = "policytrack-notifications"
DELIVERIES = Counter("policytrack_webhook_deliveries_total", "Webhook delivery attempts", ["outcome"])
QUEUED = Gauge("policytrack_webhook_queued", "Alerts waiting for delivery, all subscribers")


@dataclass(frozen=True)
class RetryPolicy:
    period: timedelta
    base_seconds: float
    max_seconds: float
    timeout_seconds: float

    def backoff(self, attempt: int) -> float:
        """Exponential, capped, with full jitter in its upper half."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** (attempt - 1))
        return ceiling * (0.5 + random.random() / 2)


class SubscriberWorker:
    """One subscriber's queue, in lanes: alerts about one task keep their order in one lane,
    while other tasks' alerts go out alongside on the other lanes."""

    def __init__(self, subscription: Subscription, deliver: Callable[[Subscription, CloudEvent], Awaitable[None]],
                 limit: int, lanes: int) -> None:  # fmt: skip
        self.subscription = subscription
        self._lanes: list[asyncio.Queue[CloudEvent]] = [asyncio.Queue(maxsize=max(1, limit // lanes))
                                                        for _ in range(lanes)]  # fmt: skip
        self._tasks = [asyncio.create_task(self._run(lane, deliver), name=f"deliver-{subscription.subscription_id}")
                       for lane in self._lanes]  # fmt: skip

    def put(self, alert: CloudEvent) -> None:
        """Raises ``asyncio.QueueFull`` when this subscriber is too far behind."""
        self._lanes[zlib.crc32(alert.data.task_id.encode()) % len(self._lanes)].put_nowait(alert)

    async def _run(self, lane: asyncio.Queue[CloudEvent],
                   deliver: Callable[[Subscription, CloudEvent], Awaitable[None]]) -> None:  # fmt: skip
        while True:
            alert = await lane.get()
            QUEUED.dec()
            try:
                await deliver(self.subscription, alert)
            except Exception:  # one alert's trouble must not stop this subscriber's queue
                log.exception("delivery crashed", alert_id=alert.data.alert_id)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class Receipts(Protocol):
    """Where delivery receipts and failures go: the producer, or a fake in fast tests."""

    async def enqueue(self, event: CloudEvent) -> asyncio.Future[Any]: ...
    async def dead_letter(self, failure: DecodeFailure, *, topic: str, partition: int, offset: int,
                          consumer: str) -> object: ...  # fmt: skip


class Deliveries:
    def __init__(self, producer: Receipts | EventProducer, retry: RetryPolicy, addresses: AddressPolicy,
                 queue_limit: int, concurrency: int = 8, resolve: Resolver = system_resolver) -> None:  # fmt: skip
        self._producer = producer
        self._retry = retry
        self._queue_limit = queue_limit
        self._concurrency = concurrency
        self._workers: dict[str, SubscriberWorker] = {}
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
        self._client = httpx.AsyncClient(timeout=retry.timeout_seconds, follow_redirects=False,
                                         transport=VettedTransport(addresses, resolve, limits=limits))  # fmt: skip

    def subscribe(self, subscription: Subscription) -> None:
        if subscription.subscription_id not in self._workers:
            self._workers[subscription.subscription_id] = SubscriberWorker(subscription, self._deliver,
                                                                           self._queue_limit, self._concurrency)

    async def unsubscribe(self, subscription_id: str) -> None:
        worker = self._workers.pop(subscription_id, None)
        if worker is not None:
            await worker.close()

    async def enqueue(self, subscription: Subscription, alert: CloudEvent) -> None:
        worker = self._workers.get(subscription.subscription_id)
        if worker is None:
            return
        try:
            worker.put(alert)
            QUEUED.inc()
        except asyncio.QueueFull:
            await self._give_up(subscription, alert, 0, "the subscriber's queue is full")

    async def close(self) -> None:
        for worker in list(self._workers.values()):
            await worker.close()
        await self._client.aclose()

    async def _deliver(self, subscription: Subscription, alert: CloudEvent) -> None:
        body = to_structured(alert).decode()
        signer = Webhook(subscription.secret)
        give_up_at = time.monotonic() + self._retry.period.total_seconds()
        attempt, reason = 0, ""
        while True:
            attempt += 1
            sent_at = datetime.now(UTC)
            headers = {
                "content-type": STRUCTURED, "webhook-id": alert.data.alert_id,
                "webhook-timestamp": str(int(sent_at.timestamp())),
                "webhook-signature": signer.sign(alert.data.alert_id, sent_at, body),
            }  # fmt: skip
            try:
                response = await self._client.post(subscription.webhook_url, content=body, headers=headers)
                if 200 <= response.status_code < 300:
                    DELIVERIES.labels("delivered").inc()
                    await self._record(c.AlertDelivered(alert_id=alert.data.alert_id, task_id=alert.data.task_id,
                                                        subscription_id=subscription.subscription_id,
                                                        attempts=attempt, status_code=response.status_code), alert)
                    return
                reason = f"HTTP {response.status_code}"
            except httpx.HTTPError as error:
                if (refusal := refused(error)) is not None:
                    await self._give_up(subscription, alert, attempt, refusal)
                    return
                reason = f"{type(error).__name__}: {error}"
            DELIVERIES.labels("retried").inc()
            pause = self._retry.backoff(attempt)
            if time.monotonic() + pause > give_up_at:
                await self._give_up(subscription, alert, attempt, reason)
                return
            await asyncio.sleep(pause)

    async def _give_up(self, subscription: Subscription, alert: CloudEvent, attempts: int, reason: str) -> None:
        DELIVERIES.labels("failed").inc()
        log.warning("delivery failed", alert_id=alert.data.alert_id, subscription=subscription.subscription_id,
                    attempts=attempts, reason=reason)  # fmt: skip
        failed = c.AlertDeliveryFailed(alert_id=alert.data.alert_id, task_id=alert.data.task_id,
                                       subscription_id=subscription.subscription_id, attempts=max(attempts, 1),
                                       reason=reason)  # fmt: skip
        await self._record(failed, alert)
        record = encode(alert)
        await self._producer.dead_letter(
            DecodeFailure(f"webhook delivery to {subscription.subscription_id} failed: {reason}", record.key,
                          record.value, record.headers),
            topic=record.topic, partition=-1, offset=-1, consumer="notifications-webhooks",
        )  # fmt: skip

    async def _record(self, data: c.EventData, alert: CloudEvent) -> None:
        """Buffers the receipt without waiting for its acknowledgement: the worker moves on to
        the next alert, and the producer retries on its own."""
        future = await self._producer.enqueue(new_event(data, actor=ACTOR, causationid=alert.id,
                                                        correlationid=alert.correlationid))  # fmt: skip
        future.add_done_callback(_log_unrecorded)


def _log_unrecorded(future: asyncio.Future[object]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("a delivery receipt was not recorded; the alert may be delivered again after a restart",
                  error=repr(future.exception()))
