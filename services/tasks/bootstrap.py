"""Wires the tasks service: settings -> the log, the state rebuilt from it, the application
service, the command topic; the HTTP app reads it all from ``app.state.runtime``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from services.tasks.adapters.command_topic import CommandRecord, CommandTopicHandler, parse_command_record
from services.tasks.adapters.event_log import EventLog, KafkaEventLog
from services.tasks.adapters.follower import LogFollower, Outcomes
from services.tasks.adapters.forwarding import Forwarder
from services.tasks.adapters.history import TaskHistory
from services.tasks.adapters.ownership import CommandPartitions, PartitionedEventLog
from services.tasks.adapters.rebuild import RebuildReport, catch_up
from services.tasks.adapters.snapshots import SnapshotStore, take_snapshot
from services.tasks.application import TaskService
from services.tasks.settings import TasksSettings
from services.tasks.view import LogView
from shared.auth import InsecureConfiguration, TokenVerifier
from shared.clock import Clock, utc_now
from shared.contract.topics import COMMANDS, EVENTS
from shared.kafka.consumer import ConsumerRunner, StopConsuming, open_consumer, partitions_of
from shared.kafka.producer import EventProducer
from shared.logging import get_logger
from shared.supervision import BackgroundWork, Health

log = get_logger(__name__)


@dataclass
class TasksRuntime:
    settings: TasksSettings
    verifier: TokenVerifier
    service: TaskService
    dead_letters: EventProducer
    snapshots: SnapshotStore
    rebuilt: RebuildReport | None = None
    follower: LogFollower | None = None
    """With several instances: what keeps the view current with the others' appends."""
    forwarder: Forwarder | None = None
    _snapshot_covers: int | None = None
    """How many of the view's events the last snapshot holds; None before the first one."""
    work: BackgroundWork = field(default_factory=BackgroundWork)
    _runner: ConsumerRunner[CommandRecord] | None = None
    _health: Health | None = None

    async def start(self) -> None:
        # Registering the transactional id first fences any older instance before we read
        # the log, so nothing can be appended behind our back while we rebuild. (With several
        # instances, each partition's id is registered when the group assigns the partition.)
        await self.service.log.start()
        await self.dead_letters.start()
        self.service.view, rebuilt = await catch_up(self.settings.kafka, self.snapshots)
        if self.follower is not None:
            await self._count_partitions()
            self.follower.view = self.service.view
            self.work.start("log-follower", self.follower.run)
        self.rebuilt = rebuilt
        self._snapshot_covers = 0 if self.rebuilt.snapshot == "used" else None
        log.info(
            "state rebuilt from the log",
            snapshot=self.rebuilt.snapshot,
            events=self.rebuilt.events,
            skipped=self.rebuilt.skipped,
            seconds=round(self.rebuilt.seconds, 3),
        )
        partitioned = isinstance(self.service.log, PartitionedEventLog)
        handler = CommandTopicHandler(
            self.service, self.verifier, lambda: self._health, forwarding=self.dead_letters if partitioned else None
        )
        self._runner = ConsumerRunner(
            self.settings.kafka,
            name="tasks-commands",
            topics=[COMMANDS],
            handler=handler,
            dead_letters=self.dead_letters,
            group_id=f"{self.settings.consumer_group}-commands",
            decode=parse_command_record,
            rebalance=CommandPartitions(self.service.log)
            if isinstance(self.service.log, PartitionedEventLog)
            else None,
            session_timeout_ms=self.settings.group_session_timeout_ms,
            pipelined=True,
        )
        self._health = self.work.start("command-topic", self._consume_commands)
        if self.settings.watch_interval_seconds > 0:
            self.work.start("assessments", self._assess)
        if self.settings.snapshot_interval_seconds > 0:
            self.work.start("snapshots", self._snapshot_every_interval)

    async def _count_partitions(self) -> None:
        """Commands and events must have as many partitions, so that one key is one owner on both."""
        async with open_consumer(self.settings.kafka, client_id="tasks-partitions") as consumer:
            events = len(await partitions_of(consumer, [EVENTS]))
            commands = len(await partitions_of(consumer, [COMMANDS]))
        if events != commands:
            raise RuntimeError(f"{EVENTS} has {events} partitions and {COMMANDS} {commands}: they must be equal")
        assert isinstance(self.service.log, PartitionedEventLog)
        self.service.log.partitions = events

    async def snapshot(self) -> bool:
        """Writes what changed since the last snapshot; False when nothing did."""
        view = self.service.view
        if view.events_taken == self._snapshot_covers or self.service.log.fenced:
            return False
        self._snapshot_covers = await take_snapshot(self.snapshots, view)
        return True

    async def _snapshot_every_interval(self, health: Health) -> None:
        """At once (the state just rebuilt is worth keeping), then every interval."""
        while True:
            if await self.snapshot():
                log.info("snapshot written", events=self.service.view.events_taken)
            health.healthy()
            if await self.work.sleep(self.settings.snapshot_interval_seconds):
                return

    async def _assess(self, health: Health) -> None:
        """Health and evaluations as time passes: recorded every interval, at once at start."""
        while True:
            recorded = await self.service.assess()
            if recorded:
                log.info("assessed", events=recorded)
            health.healthy()
            if await self.work.sleep(self.settings.watch_interval_seconds):
                return

    async def _consume_commands(self, health: Health) -> None:
        assert self._runner is not None
        try:
            await self._runner.run(health)
        except StopConsuming as reason:
            # Fenced: another instance owns the writes now; leave it the command topic too.
            health.failed(f"stopped consuming commands: {reason}")
            await self.work.stopping.wait()

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.stop()
        await self.work.stop()
        await self.service.log.stop()
        await self.dead_letters.stop()
        if self.rebuilt is not None and self.settings.snapshot_interval_seconds > 0:
            try:
                await self.snapshot()
            except Exception as error:  # derived data: the next start rebuilds from the log
                log.warning("no snapshot at stop", error=repr(error))

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        fenced, recovering = self.service.log.fenced, self.service.log.recovering
        working, background = self.work.readiness()
        ready = self.rebuilt is not None and not fenced and not recovering and working
        details: dict[str, Any] = {
            "rebuilt": self.rebuilt is not None,
            "fenced": fenced,
            "log_writer_recovering": recovering,
            "command_topic": background.get("command-topic", {}).get("ok", False),
            "background": background,
        }
        if isinstance(self.service.log, PartitionedEventLog):
            details["deciding_partitions"] = sorted(self.service.log.owned)
        if self.rebuilt is not None:
            details["events"] = self.rebuilt.events
            details["snapshot"] = self.rebuilt.snapshot
            details["events_since_snapshot"] = self.service.view.events_taken - (self._snapshot_covers or 0)
        return ready, details


def bootstrap(
    settings: TasksSettings | None = None, clock: Clock = utc_now, log_: EventLog | None = None
) -> TasksRuntime:
    settings = settings or TasksSettings()
    verifier = TokenVerifier(settings.auth, settings.runtime)  # refuses the dev key outside dev
    dead_letters = EventProducer(settings.kafka, client_id=f"{settings.transactional_id}-deadletters")
    snapshots = SnapshotStore(settings.snapshot_file())
    view = LogView(history=TaskHistory(archive=snapshots))
    follower = LogFollower(settings.kafka, view, Outcomes()) if settings.partitioned_writers and log_ is None else None
    forwarder: Forwarder | None = None
    if follower is not None:
        partitioned = PartitionedEventLog(
            settings.kafka, transactional_prefix=settings.transactional_id, caught_up=follower.caught_up
        )
        service = TaskService(partitioned, view, clock, ownership=partitioned)
        forwarder = Forwarder(dead_letters, follower.outcomes, partitioned, service, settings.forward_timeout_seconds)
    else:
        event_log = log_ or KafkaEventLog(settings.kafka, transactional_id=settings.transactional_id)
        service = TaskService(event_log, view, clock)
    if settings.evaluation_month_seconds is not None:
        if settings.runtime.env != "dev":
            raise InsecureConfiguration(
                "refusing to start: POLICYTRACK_TASKS_EVALUATION_MONTH_SECONDS is for development"
            )
        service.month = timedelta(seconds=settings.evaluation_month_seconds)
    return TasksRuntime(
        settings=settings,
        verifier=verifier,
        service=service,
        dead_letters=dead_letters,
        snapshots=snapshots,
        follower=follower,
        forwarder=forwarder,
    )
