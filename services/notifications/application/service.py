"""What the notifications service does with the log: keep the schedule and subscriptions,
emit alerts when their time comes and hand them to subscribers; subscribe and unsubscribe.

Alert ids are derived from (deadline, threshold), so an alert emitted twice is one alert
for everyone who reads the log, this service included; a delivery is receipted on the log,
so after a restart only what has no receipt is delivered again (same ``webhook-id``)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from typing import Any, Protocol

from services.notifications.adapters.addresses import AddressPolicy, Resolver, check_url, system_resolver
from services.notifications.adapters.delivery import ACTOR, Deliveries
from services.notifications.adapters.ical import calendar_document
from services.notifications.adapters.mail import Alert
from services.notifications.adapters.sealing import Sealer
from services.notifications.adapters.snapshots import capture
from services.notifications.domain import calendar_feed as feeds
from services.notifications.domain import subscriptions as rules
from services.notifications.domain.calendar_feed import Feed, FeedBody
from services.notifications.domain.digest import daily_digests
from services.notifications.domain.schedule import Schedule
from services.notifications.domain.subscriptions import (
    Mailbox,
    MailSubscriptionBody,
    Sealed,
    Subscription,
    SubscriptionBody,
    Webhook,
    new_secret,
)
from shared.auth import Actor
from shared.clock import Clock, utc_now
from shared.contract import catalog as c
from shared.contract.envelope import AnyEvent, is_notice, new_event
from shared.contract.topics import EVENTS
from shared.domain.refusals import Invalid, NotFound
from shared.kafka.snapshots import Positions
from shared.logging import get_logger
from shared.supervision import Health

log = get_logger(__name__)
EMIT_CHUNK = 64
"""Alerts appended between looks at which of them the log has acknowledged."""


class AlertLog(Protocol):
    """Where the service's own events go (``policy.alerts``): the producer, or a fake in fast tests."""

    async def publish(self, event: AnyEvent) -> None: ...
    async def enqueue(self, event: AnyEvent) -> asyncio.Future[Any]: ...


@dataclass(frozen=True)
class LogPosition:
    """Where on the log an event was read."""

    topic: str
    partition: int
    offset: int


@dataclass
class NotificationService:
    schedule: Schedule
    producer: AlertLog
    deliveries: Deliveries
    sealer: Sealer
    addresses: AddressPolicy
    clock: Clock = utc_now
    resolve: Resolver = system_resolver
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    feeds: dict[str, Feed] = field(default_factory=dict)
    feed_by_secret: dict[str, str] = field(default_factory=dict)
    """Each live feed's id by the SHA-256 of its secret address (the log keeps only the hash)."""
    delivered: set[tuple[str, str]] = field(default_factory=set)
    live: bool = False
    positions: Positions = field(default_factory=dict)
    """Per partition of ``policy.events``, where the schedule stands: what a snapshot claims."""
    events_applied: int = 0
    owns: Callable[[str], bool] | None = None
    """With several instances: whether this one decides and delivers the alerts keyed by an
    id (the owner of its partition does). None: this instance decides every alert."""
    deferred: dict[str, c.Notice] = field(default_factory=dict)
    """Alerts due on another instance's partitions, until read back from the log: if their
    partition comes to this instance first, it emits them."""
    _known: dict[str, Alert] = field(default_factory=dict)
    """Every alert read from the log, so that a new owner of its partition hands out what has
    no receipt yet."""
    _replayed: dict[str, Alert] = field(default_factory=dict)
    _immediate: list[c.Notice] = field(default_factory=list)
    digest_time: time | None = None
    """When, Beijing time, each department with mail readers of a digest gets one; None: never."""
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_event(self, event: AnyEvent, at: LogPosition | None = None) -> None:
        """Folds one event read from the log (``at`` where it was read; none for one made here)."""
        data = event.data
        if is_notice(event):
            self.schedule.emitted.add(event.data.alert_id)
            self.deferred.pop(event.data.alert_id, None)
            if self.owns is not None:
                self._known[event.data.alert_id] = event
            if self._decides(event.subject):
                if self.live:
                    await self._hand_out(event)
                else:
                    self._replayed[event.data.alert_id] = event
        elif isinstance(data, c.AlertDelivered | c.AlertDeliveryFailed):
            self.delivered.add((data.alert_id, data.subscription_id))
        elif isinstance(data, c.SubscriptionCreated | c.MailSubscriptionCreated):
            self._subscribed(data, event)
        elif isinstance(data, c.CalendarFeedEvent):
            self._feed_changed(data, event)
        elif isinstance(data, c.SubscriptionRemoved):
            self.subscriptions.pop(data.subscription_id, None)
            await self.deliveries.unsubscribe(data.subscription_id)
        else:
            self._immediate += self.schedule.apply(event)
            self._wake.set()
        if at is not None and at.topic == EVENTS:
            self.positions[at.partition] = (at.offset + 1, event.id)
            self.events_applied += 1

    def resume(self, schedule: Schedule, pending: list[c.Notice], positions: Positions) -> None:
        """Starts from a snapshot's schedule instead of an empty one (before reading the log)."""
        self.schedule, self._immediate, self.positions = schedule, list(pending), dict(positions)

    def capture(self) -> list[bytes]:
        """The schedule, the alerts it still owes and where it stands, as one moment."""
        return capture(self.schedule, [*self._immediate, *self.deferred.values()], self.positions)

    def _subscribed(self, data: c.SubscriptionCreated | c.MailSubscriptionCreated, event: AnyEvent) -> None:
        endpoint = self._endpoint(data)
        if endpoint is None:
            log.error("cannot unseal a subscription; wrong sealing key?", subscription=data.subscription_id)
            return
        subscription = Subscription(
            data.subscription_id,
            data.department,
            data.task_id,
            frozenset(data.event_types),
            endpoint,
            event.time,
            event.actor,
            event.actordept,
        )
        self.subscriptions[data.subscription_id] = subscription
        if self.live:
            self.deliveries.subscribe(subscription)

    def _endpoint(self, data: c.SubscriptionCreated | c.MailSubscriptionCreated) -> Webhook | Mailbox | None:
        if isinstance(data, c.MailSubscriptionCreated):
            address = self.sealer.unseal(data.sealed_address)
            return None if address is None else Mailbox(address, data.language, data.digest, data.person)
        secret = self.sealer.unseal(data.sealed_secret)
        url = self.sealer.unseal(data.sealed_webhook_url) if data.sealed_webhook_url else str(data.webhook_url)
        return None if secret is None or url is None else Webhook(url, secret)

    def _feed_changed(self, data: c.CalendarFeedEvent, event: AnyEvent) -> None:
        if isinstance(data, c.CalendarFeedIssued):
            reader = Actor(user=event.actor, department=data.department, roles=frozenset(data.roles))
            feed = Feed(data.feed_id, data.owner, reader, data.scope, data.language, data.secret_sha256, event.time)
        elif (known := self.feeds.get(data.feed_id)) is not None and isinstance(data, c.CalendarFeedRotated):
            feed = replace(known, secret_sha256=data.secret_sha256)
        else:
            feed = None
        if (gone := self.feeds.pop(data.feed_id, None)) is not None:
            self.feed_by_secret.pop(gone.secret_sha256, None)
        if feed is not None:
            self.feeds[feed.feed_id] = feed
            self.feed_by_secret[feed.secret_sha256] = feed.feed_id

    async def go_live(self) -> None:
        """Caught up with the log: start delivering, including what was left pending."""
        self.live = True
        for subscription in self.subscriptions.values():
            self.deliveries.subscribe(subscription)
        replayed, self._replayed = self._replayed, {}
        for alert in replayed.values():
            await self._hand_out(alert)
        await self.took_over(frozenset())  # partitions assigned while catching up

    async def took_over(self, partitions: frozenset[int]) -> None:
        """Partitions just assigned: hand out their alerts that have no receipt yet, and emit
        at the next pass the ones their previous owner left due."""
        if not self.live:
            return  # going live hands them out
        for alert in list(self._known.values()):
            if self._decides(alert.subject):
                await self._hand_out(alert)
        self._wake.set()

    def _decides(self, subject: str) -> bool:
        return self.owns is None or self.owns(subject)

    async def _append_and_hand_out(self, events: list[Alert]) -> None:
        """Each alert is handed out once the log has it (and every alert before it), not once
        the log has all of them: of thousands due at once, the first are delivered while the
        last are still being appended. One handed out before a failure is not handed out again."""
        appending: deque[tuple[Alert, asyncio.Future[Any]]] = deque()
        for count, event in enumerate(events, 1):
            appending.append((event, await self.producer.enqueue(event)))
            if count % EMIT_CHUNK == 0:
                await asyncio.sleep(0)  # the producer sends what is buffered; deliveries go on
                while appending and appending[0][1].done():
                    await self._handed_out_once_on_the_log(*appending.popleft())
        while appending:
            await self._handed_out_once_on_the_log(*appending.popleft())

    async def _handed_out_once_on_the_log(self, event: Alert, on_the_log: asyncio.Future[Any]) -> None:
        await on_the_log
        await self._hand_out(event)

    async def _hand_out(self, alert: Alert) -> None:
        for subscription in list(self.subscriptions.values()):
            if (alert.data.alert_id, subscription.subscription_id) in self.delivered:
                continue
            if subscription.wants(alert.data, alert.time):
                self.delivered.add((alert.data.alert_id, subscription.subscription_id))
                await self.deliveries.enqueue(subscription, alert)

    # --- subscriptions -------------------------------------------------------------------------

    async def subscribe(self, body: SubscriptionBody, actor: Actor) -> tuple[Subscription, str]:
        """The subscription and its signing secret (shown once, here)."""
        refusal = await check_url(str(body.webhook_url), self.addresses, self.resolve)
        if refusal is not None:
            raise Invalid(refusal, "webhook_url")
        secret = body.secret or new_secret()
        sealed = Sealed(
            f"sub-{uuid.uuid4().hex[:16]}", self.sealer.seal(str(body.webhook_url)), self.sealer.seal(secret)
        )
        created = rules.subscribe(body, actor, self.schedule.departments_of(body.task_id or ""), sealed)
        await self._record(created, actor)
        return self.subscriptions[created.subscription_id], secret

    async def subscribe_mail(self, body: MailSubscriptionBody, actor: Actor) -> Subscription:
        if self.deliveries.mailer is None:
            raise Invalid("this deployment sends no mail: no SMTP server is configured", "address")
        sealed = Sealed(f"sub-{uuid.uuid4().hex[:16]}", self.sealer.seal(str(body.address)))
        created = rules.subscribe_mail(body, actor, self.schedule.departments_of(body.task_id or ""), sealed)
        await self._record(created, actor)
        return self.subscriptions[created.subscription_id]

    def visible(self, subscription_id: str, actor: Actor) -> Subscription:
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None or not rules.may_see(subscription, actor):
            raise NotFound(f"no subscription {subscription_id} that you may see")
        return subscription

    async def unsubscribe(self, subscription_id: str, actor: Actor) -> None:
        removed = rules.unsubscribe(self.visible(subscription_id, actor), actor)
        await self._record(removed, actor)

    async def _record(self, act: c.EventData, actor: Actor) -> None:
        """``actor``'s act on the log, then into this instance's state at once, so that a read
        right after sees it."""
        event = new_event(act, actor=actor.user, actordept=actor.department)
        await self.producer.publish(event)
        await self.on_event(event)

    # --- calendar feeds ---------------------------------------------------------------------------

    async def issue_feed(self, body: FeedBody, actor: Actor) -> tuple[Feed, str]:
        """The feed and its secret (shown once, here: the log keeps only its hash)."""
        secret = secrets.token_urlsafe(32)
        issued = feeds.issue(body, actor, f"feed-{uuid.uuid4().hex[:16]}", _sha256(secret))
        await self._record(issued, actor)
        return self.feeds[issued.feed_id], secret

    def kept_feeds(self, actor: Actor) -> list[Feed]:
        return [feed for feed in self.feeds.values() if feeds.may_keep(feed, actor)]

    def kept_feed(self, feed_id: str, actor: Actor) -> Feed:
        feed = self.feeds.get(feed_id)
        if feed is None or not feeds.may_keep(feed, actor):
            raise NotFound(f"no calendar feed {feed_id} that you may see")
        return feed

    async def rotate_feed(self, feed_id: str, actor: Actor) -> str:
        """A new secret address for the feed; the old one stops working."""
        self.kept_feed(feed_id, actor)
        secret = secrets.token_urlsafe(32)
        rotated = c.CalendarFeedRotated(feed_id=feed_id, secret_sha256=_sha256(secret))
        await self._record(rotated, actor)
        return secret

    async def revoke_feed(self, feed_id: str, actor: Actor) -> None:
        self.kept_feed(feed_id, actor)
        revoked = c.CalendarFeedRevoked(feed_id=feed_id)
        await self._record(revoked, actor)

    def calendar(self, secret: str) -> bytes:
        """The feed behind a secret address, as iCalendar; NotFound for one unknown, rotated or revoked."""
        # Looked up by hash: timing can tell of the hash, never of the secret behind it.
        feed = self.feeds.get(self.feed_by_secret.get(_sha256(secret), ""))
        if feed is None:
            raise NotFound("no calendar feed at this address (it may have been rotated or revoked)")
        return calendar_document(feeds.entries(self.schedule, feed), feed.language, self.clock())

    # --- emitting alerts -------------------------------------------------------------------------

    async def run_scheduler(
        self,
        stopping: asyncio.Event,
        health: Health | None = None,
        settled: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Emits every alert whose time has come; waits for the next one or for news.
        ``settled`` is awaited whenever every alert decided so far is on the log (the moment a
        snapshot may be taken: no alert is then only in memory)."""
        while not stopping.is_set():
            if health is not None:
                health.healthy()
            now = self.clock()
            due = [a for a in self._immediate if a.alert_id not in self.schedule.emitted]
            self._immediate.clear()
            for alert in due:
                self.schedule.emitted.add(alert.alert_id)
            due += self.schedule.due_alerts(now)
            due += self._digests(now)
            due += self.deferred.values()
            mine, self.deferred = [], {}
            for alert in due:
                if self._decides(alert.subject):
                    mine.append(alert)
                else:
                    self.deferred[alert.alert_id] = alert
            if mine:
                await self._emit(mine, now, health)
            if settled is not None:
                await settled()
            next_wake = self.schedule.next_wake()
            timeout = 1.0 if next_wake is None else max(0.0, min(1.0, (next_wake - self.clock()).total_seconds()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    def _digests(self, now: datetime) -> list[c.Notice]:
        if self.digest_time is None:
            return []
        readers = {
            s.department
            for s in self.subscriptions.values()
            if isinstance(s.endpoint, Mailbox) and s.endpoint.digest and s.department is not None
        }
        digests = daily_digests(self.schedule, readers, now, self.digest_time)
        self.schedule.emitted.update(d.alert_id for d in digests)
        return list(digests)

    async def _emit(self, alerts: list[c.Notice], now: datetime, health: Health | None = None) -> None:
        """Appends the alerts together; their ids are derived, so a retry cannot double them
        for anyone who reads the log back (this service included)."""
        events = [new_event(alert, actor=ACTOR, id=alert.alert_id, time=now) for alert in alerts]
        while True:  # an alert whose time has come must not be lost: retry until the log has it
            try:
                await self._append_and_hand_out(events)
                log.info("alerts emitted", count=len(events), types=sorted({a.event_type for a in alerts}))
                return
            except Exception as error:
                log.warning("could not emit alerts; retrying", count=len(events), error=repr(error))
                if health is not None:
                    health.failed(f"could not emit {len(events)} alerts: {error!r}"[:500])
                await asyncio.sleep(1)


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
