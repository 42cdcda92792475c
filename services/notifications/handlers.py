"""What the notifications service does with the log: keep the schedule and subscriptions,
emit alerts when their time comes, hand them to subscribers and to live streams."""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import ConsumerRecord

from services.notifications.delivery import ACTOR, Deliveries
from services.notifications.schedule import Schedule
from services.notifications.subscriptions import AddressPolicy, Sealer, Subscription
from shared.auth import Actor, reads_everything
from shared.contract import catalog as c
from shared.contract.envelope import CloudEvent, new_event
from shared.kafka.producer import EventProducer
from shared.logging import get_logger
from shared.supervision import Health

log = get_logger(__name__)
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def stream_position(event: CloudEvent) -> str:
    """An alert's place in the live stream: time order, whatever order partitions replay in."""
    return f"{event.time.isoformat()}|{event.id}"


class AlertStream:
    """Recent alerts in time order, and the live listeners of ``GET /v1/alerts/stream``."""

    def __init__(self, keep: int = 50_000) -> None:
        self._keep = keep
        self._recent: list[CloudEvent] = []
        self._listeners: set[asyncio.Queue[CloudEvent]] = set()

    def add(self, alert: CloudEvent, live: bool) -> None:
        # Partitions replay interleaved, so alerts can arrive out of time order.
        bisect.insort(self._recent, alert, key=stream_position)
        if len(self._recent) > 2 * self._keep:
            del self._recent[: len(self._recent) - self._keep]
        if live:
            for listener in list(self._listeners):
                try:
                    listener.put_nowait(alert)
                except asyncio.QueueFull:
                    self._listeners.discard(listener)  # too slow: it reconnects with Last-Event-ID

    def since(self, position: str | None) -> list[CloudEvent]:
        if position is None:
            return list(self._recent)
        return self._recent[bisect.bisect_right(self._recent, position, key=stream_position):]

    def listen(self) -> asyncio.Queue[CloudEvent]:
        queue: asyncio.Queue[CloudEvent] = asyncio.Queue(maxsize=1000)
        self._listeners.add(queue)
        return queue

    def forget(self, queue: asyncio.Queue[CloudEvent]) -> None:
        self._listeners.discard(queue)


def may_see(actor: Actor, alert: CloudEvent) -> bool:
    data = alert.data
    departments = set(getattr(data, "departments", ())) | {getattr(data, "escalated_to", None)}
    return reads_everything(actor) or actor.department in departments


@dataclass
class NotificationService:
    schedule: Schedule
    producer: EventProducer
    deliveries: Deliveries
    sealer: Sealer
    addresses: AddressPolicy
    clock: Clock = utc_now
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    delivered: set[tuple[str, str]] = field(default_factory=set)
    stream: AlertStream = field(default_factory=AlertStream)
    live: bool = False
    _immediate: list[c.EventData] = field(default_factory=list)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_record(self, event: CloudEvent, _record: ConsumerRecord) -> None:
        data = event.data
        if isinstance(data, c.DeadlineAlert):
            self.schedule.emitted.add(data.alert_id)
            self.stream.add(event, self.live)
            if self.live:
                await self._hand_out(event)
        elif isinstance(data, c.AlertDelivered | c.AlertDeliveryFailed):
            self.delivered.add((data.alert_id, data.subscription_id))
        elif isinstance(data, c.SubscriptionCreated):
            secret = self.sealer.unseal(data.sealed_secret)
            url = self.sealer.unseal(data.sealed_webhook_url) if data.sealed_webhook_url else str(data.webhook_url)
            if secret is None or url is None:
                log.error("cannot unseal a subscription; wrong sealing key?", subscription=data.subscription_id)
                return
            subscription = Subscription(data.subscription_id, data.department, data.task_id,
                                        frozenset(data.event_types), url, secret, event.time, event.actor)  # fmt: skip
            self.subscriptions[data.subscription_id] = subscription
            if self.live:
                self.deliveries.subscribe(subscription)
        elif isinstance(data, c.SubscriptionRemoved):
            self.subscriptions.pop(data.subscription_id, None)
            await self.deliveries.unsubscribe(data.subscription_id)
        else:
            self._immediate += self.schedule.apply(event)
            self._wake.set()

    async def go_live(self) -> None:
        """Caught up with the log: start delivering, including what was left pending."""
        self.live = True
        for subscription in self.subscriptions.values():
            self.deliveries.subscribe(subscription)
        for alert in self.stream.since(None):
            await self._hand_out(alert)

    async def _hand_out(self, alert: CloudEvent) -> None:
        for subscription in list(self.subscriptions.values()):
            if (alert.data.alert_id, subscription.subscription_id) in self.delivered:
                continue
            if subscription.wants(alert.data, alert.time):
                self.delivered.add((alert.data.alert_id, subscription.subscription_id))
                await self.deliveries.enqueue(subscription, alert)

    async def run_scheduler(self, stopping: asyncio.Event, health: Health | None = None) -> None:
        """Emits every alert whose time has come; waits for the next one or for news."""
        while not stopping.is_set():
            if health is not None:
                health.healthy()
            now = self.clock()
            due = [a for a in self._immediate if a.alert_id not in self.schedule.emitted]
            self._immediate.clear()
            for alert in due:
                self.schedule.emitted.add(alert.alert_id)
            due += self.schedule.due_alerts(now)
            if due:
                await self._emit(due, now, health)
            next_wake = self.schedule.next_wake()
            timeout = 1.0 if next_wake is None else max(0.0, min(1.0, (next_wake - self.clock()).total_seconds()))
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            except TimeoutError:
                pass

    async def _emit(self, alerts: list[c.EventData], now: datetime, health: Health | None = None) -> None:
        """Appends the alerts together; their ids are derived, so a retry cannot double them
        for anyone who reads the log back (this service included)."""
        events = [new_event(alert, actor=ACTOR, id=alert.alert_id, time=now) for alert in alerts]
        while True:  # an alert whose time has come must not be lost: retry until the log has it
            try:
                await self.producer.publish_all(events)
                log.info("alerts emitted", count=len(events), types=sorted({a.event_type for a in alerts}))
                for event in events:  # on the log now: hand out at once rather than on reading it back
                    await self._hand_out(event)
                return
            except Exception as error:  # noqa: BLE001 - any producer failure is retried
                log.warning("could not emit alerts; retrying", count=len(events), error=repr(error))
                if health is not None:
                    health.failed(f"could not emit {len(events)} alerts: {error!r}"[:500])
                await asyncio.sleep(1)
