"""Wires the notifications service: settings -> schedule, subscriptions, delivery, HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from cryptography.fernet import Fernet

from services.notifications.adapters.addresses import AddressPolicy
from services.notifications.adapters.alert_stream import StreamItem, StreamPosition, alerts_from
from services.notifications.adapters.delivery import Deliveries, RetryPolicy
from services.notifications.adapters.live_alerts import LiveAlerts
from services.notifications.adapters.mail import Mailer
from services.notifications.adapters.sealing import Sealer
from services.notifications.adapters.snapshots import CODE_VERSION, ScheduleSnapshots, SnapshotUnreadable
from services.notifications.application.service import LogPosition, NotificationService
from services.notifications.domain.schedule import Policy, Schedule
from services.notifications.settings import NotificationsSettings
from shared.auth import InsecureConfiguration, TokenVerifier
from shared.bounds import Held
from shared.clock import Clock
from shared.contract.codec import DecodeFailure
from shared.contract.envelope import AnyEvent
from shared.contract.topics import ALERTS, EVENTS
from shared.kafka.consumer import ConsumerRunner
from shared.kafka.ownership import PartitionShare
from shared.kafka.producer import EventProducer
from shared.kafka.snapshots import disproof
from shared.logging import Sampled, get_logger
from shared.provenance.gate import ProofGate
from shared.provenance.keys import KeyFolder, TrustStore, refuse_if_shared, write_secret
from shared.provenance.sealing import SnapshotSeal
from shared.supervision import BackgroundWork, Health

log = get_logger(__name__)
_NOT_EVENTS = Sampled(log, "skipping a record that is not an event")
OWNER = "notifications"
"""Whose key the service signs with: the only owner trusted to write ``policy.alerts``."""


class SkipPoison:
    """The notifications service replays the log at every start; dead-lettering what it cannot
    read would dead-letter it again each time. The audit trail keeps such records anyway."""

    async def dead_letter(
        self, failure: DecodeFailure, *, topic: str, partition: int, offset: int, consumer: str
    ) -> None:
        _NOT_EVENTS.warning(topic=topic, partition=partition, offset=offset, reason=failure.reason)


@dataclass
class NotificationsRuntime:
    settings: NotificationsSettings
    verifier: TokenVerifier
    service: NotificationService
    trust: TrustStore
    producer: EventProducer
    snapshots: ScheduleSnapshots
    streams: Held
    """The live alert streams open now, per user."""
    live_alerts: LiveAlerts = field(default_factory=LiveAlerts)
    work: BackgroundWork = field(default_factory=BackgroundWork)
    snapshot: str = "none"
    """What the start made of the snapshot: used, none, or why it was discarded."""
    _runner: ConsumerRunner[AnyEvent] | None = None
    _snapshot_covers: int | None = None
    """How many of the events applied in this process the last snapshot holds."""
    _snapshot_taken: float = float("-inf")
    share: PartitionShare | None = None
    """With several instances: the partitions whose alerts this one decides and delivers."""

    async def start(self) -> None:
        await self.producer.start()
        if self.share is not None:
            self.work.start("partitions", self.share.hold, interruptible=True)
        self._runner = ConsumerRunner(
            self.settings.kafka,
            name="notifications",
            topics=[EVENTS, ALERTS],
            handler=self._fold,
            dead_letters=SkipPoison(),
            group_id=None,
            proofs=ProofGate(self.trust),
            start_at=await self._resume(),
        )
        self.work.start("log", self._runner.run)
        self.work.start("scheduler", self._schedule)

    async def _fold(self, event: AnyEvent, record: ConsumerRecord) -> None:
        if record.topic == ALERTS:
            self.live_alerts.took(record.partition, record.offset, event)
        await self.service.on_event(event, LogPosition(record.topic, record.partition, record.offset))

    def follow_alerts(self, position: StreamPosition | None, *, from_end: bool) -> AsyncGenerator[StreamItem, None]:
        """A live stream's alerts from ``position`` (None: from the log's end, or its beginning)."""

        def read_apart(at: StreamPosition | None) -> AsyncGenerator[StreamItem, None]:
            return alerts_from(self.settings.kafka, ProofGate(self.trust), at, from_end=from_end)

        if position is None:
            position = self.live_alerts.start(from_end=from_end, caught_up=self.service.live)
        return self.live_alerts.follow(position, read_apart)

    async def _resume(self) -> dict[TopicPartition, int]:
        """The schedule from the snapshot if the log bears it out; where to read ``policy.events`` from."""
        claim = await asyncio.to_thread(self.snapshots.claim)
        if claim is None:
            return {}
        reason = (
            str(claim)
            if isinstance(claim, SnapshotUnreadable)
            else await disproof(
                self.settings.kafka, claim, topic=EVENTS, version=CODE_VERSION, client_id="notifications-snapshot-check"
            )
        )
        resumed = None
        if reason is None:
            try:
                resumed = await asyncio.to_thread(self.snapshots.restore, self.service.schedule.policy)
            except SnapshotUnreadable as error:
                reason = str(error)
        if resumed is None:
            log.warning("schedule snapshot discarded; reading the log from its beginning", reason=reason)
            self.snapshot = f"discarded: {reason}"
            await asyncio.to_thread(self.snapshots.discard)
            return {}
        self.service.resume(resumed.schedule, resumed.pending, resumed.positions)
        self.snapshot, self._snapshot_covers = "used", 0
        return {TopicPartition(EVENTS, partition): offset for partition, (offset, _) in resumed.positions.items()}

    async def _snapshot_when_due(self) -> None:
        """Writes the schedule if it changed and the interval has passed; a failure is logged
        and tried again later (a snapshot only saves reading)."""
        interval = self.settings.snapshot_interval_seconds
        applied = self.service.events_applied
        if interval <= 0 or applied == self._snapshot_covers or time.monotonic() - self._snapshot_taken < interval:
            return
        try:
            captured = self.service.capture()  # before any await: one moment of the schedule
            await asyncio.to_thread(self.snapshots.save, captured)
        except Exception as error:
            log.warning("could not write the schedule snapshot", error=repr(error))
            return
        self._snapshot_covers, self._snapshot_taken = applied, time.monotonic()

    async def _schedule(self, health: Health) -> None:
        """Once caught up with the log, go live: deliver, and emit alerts as they fall due."""
        assert self._runner is not None
        while not self.service.live:
            lag = await self._runner.lag()
            if lag == 0:
                await self.service.go_live()
                break
            health.failed("catching up with the log" if lag else "waiting for the log reader")
            if await self.work.sleep(0.05):
                return
        health.healthy()
        await self.service.run_scheduler(self.work.stopping, health, settled=self._snapshot_when_due)

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.stop()
        await self.work.stop()
        await self.service.deliveries.close()
        await self.producer.stop()

    def public_keys(self) -> dict[str, Any]:
        return self.trust.jwks(OWNER)

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        working, background = self.work.readiness()
        return working and self.service.live, {
            "live": self.service.live,
            "subscriptions": len(self.service.subscriptions),
            **({} if self.share is None else {"deciding_partitions": sorted(self.share.owned)}),
            "open_deadlines": len(self.service.schedule.deadlines),
            "snapshot": self.snapshot,
            "events": self.service.events_applied,
            "events_since_snapshot": self.service.events_applied - (self._snapshot_covers or 0),
            "background": background,
            "working_days": self._working_days(),
        }

    def _working_days(self) -> dict[str, Any]:
        """The calendar support requests are counted on; years it cannot tell are a warning here."""
        calendar = self.service.schedule.policy.calendar
        today = self.service.clock().date()
        unknown = sorted({*calendar.unknown_years(today), *calendar.guessed_years})
        return {
            "zone": calendar.zone.key,
            "unknown_years": unknown,
            **({"warning": _unknown_years_warning(unknown)} if unknown else {}),
        }


def _unknown_years_warning(years: list[int]) -> str:
    return (
        f"no official holiday arrangement for {', '.join(map(str, years))}: working days are counted Monday to "
        "Friday until the arrangement is added to the working-days file (POLICYTRACK_WORKING_DAYS_FILE)"
    )


def sealing_key(settings: NotificationsSettings) -> str:
    if settings.sealing_key:
        return settings.sealing_key
    if settings.runtime.env == "prod":
        raise InsecureConfiguration(
            "refusing to start: set POLICYTRACK_NOTIFICATIONS_SEALING_KEY (a Fernet key) to seal webhook secrets"
        )
    path = settings.sealing_key_file()
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # written by another instance meanwhile: use that one
            write_secret(path, Fernet.generate_key())
    refuse_if_shared(path)
    return path.read_text().strip()


def bootstrap(settings: NotificationsSettings | None = None, clock: Clock | None = None) -> NotificationsRuntime:
    settings = settings or NotificationsSettings()
    clock = clock or settings.runtime.clock()
    verifier = TokenVerifier(settings.auth, settings.runtime)
    keys = KeyFolder.of(settings.runtime)
    signing_key = keys.signing_key(OWNER, create=settings.runtime.env != "prod")
    producer = EventProducer(settings.kafka, client_id="policytrack-notifications", signing_key=signing_key)
    policy = Policy(
        lead_times=tuple(settings.lead_times),
        grace=settings.grace,
        escalate_after=settings.escalate_after,
        calendar=settings.runtime.working_calendar(),
    )
    if unknown := policy.calendar.unknown_years(clock().date()):
        log.warning("working-day calendar incomplete", detail=_unknown_years_warning(unknown))
    retry = RetryPolicy(
        settings.retry_period,
        settings.retry_base_seconds,
        settings.retry_max_seconds,
        settings.delivery_timeout_seconds,
    )
    addresses = AddressPolicy(
        dev=settings.runtime.env == "dev",
        allow_private=settings.allow_private_networks,
        allowed_hosts=frozenset(settings.allowed_hosts),
    )
    service = NotificationService(
        Schedule(policy),
        producer,
        Deliveries(
            producer,
            retry,
            addresses,
            settings.subscriber_queue_limit,
            settings.subscriber_concurrency,
            owner_in_flight=settings.owner_in_flight,
            mailer=Mailer(settings.smtp) if settings.smtp.host else None,
        ),
        Sealer(sealing_key(settings)),
        addresses,
        clock,
        digest_time=settings.digest_time,
    )
    share = None
    if settings.partitioned:
        share = PartitionShare(
            settings.kafka,
            group_id=settings.owners_group,
            topic=EVENTS,
            client_id="notifications-owners",
            session_timeout_ms=settings.group_session_timeout_ms,
            taken=service.took_over,
        )
        service.owns = share.owns_key
    return NotificationsRuntime(
        settings=settings,
        verifier=verifier,
        service=service,
        trust=keys.trust(),
        producer=producer,
        snapshots=ScheduleSnapshots(settings.snapshot_file(), SnapshotSeal(signing_key)),
        streams=Held("alert streams", settings.streams),
        live_alerts=LiveAlerts(keep=settings.live_alerts_kept),
        share=share,
    )
