"""Delivery to subscribers: webhooks by the Standard Webhooks specification, and mail.

Each subscriber has its own queue and workers, so a slow or dead one never delays the
others. A delivery is retried with exponential backoff and jitter for the retry period;
then a ``delivery_failed`` alert and a dead-letter record say so. The ``webhook-id`` (a
mail's ``Message-ID``) comes from the alert id, the same on every attempt, so receivers can
drop repeats.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol

import aiohttp
from prometheus_client import Counter, Gauge
from standardwebhooks.webhooks import Webhook as WebhookSigner

from services.notifications.adapters.addresses import (
    AddressPolicy,
    RefusedAddress,
    Resolver,
    literal_refusal,
    refused,
    system_resolver,
    vetted_connector,
)
from services.notifications.adapters.mail import MAIL_ERRORS, Alert, Mailer
from services.notifications.domain.subscriptions import Mailbox, Subscription, Webhook
from shared.contract import catalog as c
from shared.contract.codec import STRUCTURED, DecodeFailure, encode, to_structured
from shared.contract.envelope import AnyEvent, new_event
from shared.kafka.producer import EventProducer
from shared.logging import get_logger
from shared.supervision import Backoff

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
        return Backoff(self.base_seconds, self.max_seconds).delay(attempt)


class SubscriberWorker:
    """One subscriber's queue, in lanes: alerts about one task keep their order in one lane,
    while other tasks' alerts go out alongside on the other lanes."""

    def __init__(
        self,
        subscription: Subscription,
        deliver: Callable[[Subscription, Alert], Awaitable[None]],
        limit: int,
        lanes: int,
    ) -> None:
        self.subscription = subscription
        self._lanes: list[asyncio.Queue[Alert]] = [asyncio.Queue(maxsize=max(1, limit // lanes)) for _ in range(lanes)]
        self._tasks = [
            asyncio.create_task(self._run(lane, deliver), name=f"deliver-{subscription.subscription_id}")
            for lane in self._lanes
        ]

    def put(self, alert: Alert) -> None:
        """Raises ``asyncio.QueueFull`` when this subscriber is too far behind."""
        self._lanes[zlib.crc32(alert.data.subject.encode()) % len(self._lanes)].put_nowait(alert)

    async def _run(self, lane: asyncio.Queue[Alert], deliver: Callable[[Subscription, Alert], Awaitable[None]]) -> None:
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

    async def enqueue(self, event: AnyEvent) -> asyncio.Future[Any]: ...
    async def dead_letter(
        self, failure: DecodeFailure, *, topic: str, partition: int, offset: int, consumer: str
    ) -> object: ...


class Deliveries:
    def __init__(
        self,
        producer: Receipts | EventProducer,
        retry: RetryPolicy,
        addresses: AddressPolicy,
        queue_limit: int,
        concurrency: int = 8,
        resolve: Resolver = system_resolver,
        *,
        owner_in_flight: int = 16,
        mailer: Mailer | None = None,
    ) -> None:
        self._producer = producer
        self._retry = retry
        self._queue_limit = queue_limit
        self._concurrency = concurrency
        self._workers: dict[str, SubscriberWorker] = {}
        self._addresses = addresses
        self._resolve = resolve
        self._client: aiohttp.ClientSession | None = None
        self._owner_in_flight = owner_in_flight
        self.mailer = mailer
        """None: this deployment sends no mail (no SMTP host is set)."""
        self._owners: dict[str, asyncio.Semaphore] = {}
        """Per user who subscribed, the deliveries in flight to all their subscriptions: however
        many subscriptions to slow endpoints one user makes, the connections others need stay free."""

    def subscribe(self, subscription: Subscription) -> None:
        if subscription.subscription_id not in self._workers:
            self._workers[subscription.subscription_id] = SubscriberWorker(
                subscription, self._deliver, self._queue_limit, self._concurrency
            )

    async def unsubscribe(self, subscription_id: str) -> None:
        worker = self._workers.pop(subscription_id, None)
        if worker is not None:
            await worker.close()

    async def enqueue(self, subscription: Subscription, alert: Alert) -> None:
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
        if self._client is not None:
            await self._client.close()

    def _session(self) -> aiohttp.ClientSession:
        """aiohttp's client (a tenth of httpx's CPU per request, measured), made in the loop
        that uses it. It keeps no cookies: every subscriber's deliveries share it, and a hosted
        receiver serves many subscribers under one host."""
        if self._client is None:
            self._client = aiohttp.ClientSession(
                connector=vetted_connector(self._addresses, self._resolve),
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=self._retry.timeout_seconds),
                auto_decompress=False,
                skip_auto_headers=("User-Agent",),
            )
        return self._client

    def _owner(self, user: str) -> asyncio.Semaphore:
        return self._owners.setdefault(user, asyncio.Semaphore(self._owner_in_flight))

    async def _post(self, url: str, body: str, headers: dict[str, str]) -> int:
        """The receiver's status code; raises ``aiohttp.ClientError`` or ``TimeoutError``."""
        if (refusal := literal_refusal(url, self._addresses)) is not None:
            raise RefusedAddress(refusal)
        async with self._session().post(url, data=body, headers=headers, allow_redirects=False) as response:
            return response.status

    async def _send(self, subscription: Subscription, alert: Alert) -> tuple[int, str | None]:
        """One attempt: the receiver's status, and None once delivered, else why not. Raises
        what the channel raises."""
        endpoint = subscription.endpoint
        if isinstance(endpoint, Mailbox):
            if self.mailer is None:
                return 0, "mail is not configured on this deployment (no SMTP host)"
            return await self.mailer.send(endpoint, alert, subscription.subscription_id), None
        status = await self._post_signed(endpoint, alert)
        return status, None if 200 <= status < 300 else f"HTTP {status}"

    async def _post_signed(self, webhook: Webhook, alert: Alert) -> int:
        body = to_structured(alert).decode()
        sent_at = datetime.now(UTC)  # the machine's, not the deployment's: receivers check it against theirs
        headers = {
            "content-type": STRUCTURED,
            "webhook-id": alert.data.alert_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": _signer(webhook.secret).sign(alert.data.alert_id, sent_at, body),
        }
        return await self._post(webhook.url, body, headers)

    async def _deliver(self, subscription: Subscription, alert: Alert) -> None:
        give_up_at = time.monotonic() + self._retry.period.total_seconds()
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._owner(subscription.created_by):
                    status, reason = await self._send(subscription, alert)
                if reason is None:
                    DELIVERIES.labels("delivered").inc()
                    await self._record(
                        c.AlertDelivered(
                            alert_id=alert.data.alert_id,
                            task_id=alert.data.subject,
                            subscription_id=subscription.subscription_id,
                            attempts=attempt,
                            status_code=status,
                        ),
                        alert,
                    )
                    return
            except (aiohttp.ClientError, RefusedAddress, *MAIL_ERRORS) as error:
                if (refusal := refused(error)) is not None:
                    await self._give_up(subscription, alert, attempt, refusal)
                    return
                reason = f"{type(error).__name__}: {error}"
            except Exception as error:  # no retry mends it; recorded and dead-lettered, never lost
                log.exception("delivery could not be attempted", alert_id=alert.data.alert_id)
                await self._give_up(subscription, alert, attempt, f"not sent: {type(error).__name__}: {error}")
                return
            DELIVERIES.labels("retried").inc()
            pause = self._retry.backoff(attempt)
            if time.monotonic() + pause > give_up_at:
                await self._give_up(subscription, alert, attempt, reason)
                return
            await asyncio.sleep(pause)

    async def _give_up(self, subscription: Subscription, alert: Alert, attempts: int, reason: str) -> None:
        DELIVERIES.labels("failed").inc()
        log.warning(
            "delivery failed",
            alert_id=alert.data.alert_id,
            subscription=subscription.subscription_id,
            attempts=attempts,
            reason=reason,
        )
        failed = c.AlertDeliveryFailed(
            alert_id=alert.data.alert_id,
            task_id=alert.data.subject,
            subscription_id=subscription.subscription_id,
            attempts=max(attempts, 1),
            reason=reason,
        )
        await self._record(failed, alert)
        record = encode(alert)
        await self._producer.dead_letter(
            DecodeFailure(
                f"webhook delivery to {subscription.subscription_id} failed: {reason}",
                record.key,
                record.value,
                record.headers,
            ),
            topic=record.topic,
            partition=-1,
            offset=-1,
            consumer="notifications-webhooks",
        )

    async def _record(self, data: c.EventData, alert: Alert) -> None:
        """Buffers the receipt without waiting for its acknowledgement: the worker moves on to
        the next alert, and the producer retries on its own."""
        future = await self._producer.enqueue(
            new_event(data, actor=ACTOR, causationid=alert.id, correlationid=alert.correlationid)
        )
        future.add_done_callback(_log_unrecorded)


@lru_cache(maxsize=1024)
def _signer(secret: str) -> WebhookSigner:
    # One per subscriber, not per delivery: making one decodes the secret.
    return WebhookSigner(secret)


def _log_unrecorded(future: asyncio.Future[object]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error(
            "a delivery receipt was not recorded; the alert may be delivered again after a restart",
            error=repr(future.exception()),
        )
