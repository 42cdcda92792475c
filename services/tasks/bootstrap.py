"""Wires the tasks service: settings -> the log, the state rebuilt from it, the application
service, the command topic; the HTTP app reads it all from ``app.state.runtime``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from services.tasks.adapters.event_log import EventLog, KafkaEventLog
from services.tasks.adapters.evidence import EvidenceStore, PostgresEvidenceStore
from services.tasks.adapters.follower import LogFollower, Outcomes
from services.tasks.adapters.forwarding import Forwarder
from services.tasks.adapters.history import TaskHistory
from services.tasks.adapters.ownership import CommandPartitions, PartitionedEventLog
from services.tasks.adapters.rebuild import RebuildReport, catch_up
from services.tasks.adapters.snapshots import SnapshotStore, take_snapshot
from services.tasks.application.service import TaskService
from services.tasks.application.view import LogView
from services.tasks.entrypoints.command_topic import (
    CommandParser,
    CommandRecord,
    CommandTopicHandler,
    PurgingDeadLetters,
    TokenPurge,
)
from services.tasks.settings import TasksSettings
from shared.auth import InsecureConfiguration, TokenVerifier
from shared.clock import Clock
from shared.contract.codes import Department
from shared.contract.topics import COMMANDS, EVENTS
from shared.kafka.consumer import ConsumerRunner, StopConsuming, open_consumer, partitions_of
from shared.kafka.producer import EventProducer
from shared.logging import get_logger
from shared.provenance.gate import ProofGate
from shared.provenance.keys import KeyFolder, TrustStore
from shared.provenance.sealing import SnapshotSeal
from shared.supervision import BackgroundWork, Health

log = get_logger(__name__)
PURGE_SECONDS = 2.0
OWNER = "tasks"
"""Whose key the service signs with: the only owner trusted to write ``policy.events``."""


@dataclass(frozen=True)
class Partitioned:
    """What an instance that is one of several writers has besides a single writer's parts."""

    owners: PartitionedEventLog
    """The partitions it decides, each with its writer (the service's log)."""
    follower: LogFollower
    """What keeps the view current with the other instances' appends."""
    forwarder: Forwarder


@dataclass
class TasksRuntime:
    settings: TasksSettings
    verifier: TokenVerifier
    service: TaskService
    trust: TrustStore
    """The public keys readers trust: the writers of the topics, the departments' systems."""
    producer: EventProducer
    """Records that are not this service's events: dead letters, commands sent on to their owner."""
    snapshots: SnapshotStore
    evidence: EvidenceStore
    rebuilt: RebuildReport | None = None
    partitioned: Partitioned | None = None
    """None with one instance."""
    _snapshot_covers: int | None = None
    """How many of the view's events the last snapshot holds; None before the first one."""
    work: BackgroundWork = field(default_factory=BackgroundWork)
    _runner: ConsumerRunner[CommandRecord] | None = None
    _health: Health | None = None

    async def start(self) -> None:
        # Registering the transactional id first fences any older instance before we read
        # the log, so nothing can be appended behind our back while we rebuild. (With several
        # instances, each partition's id is registered when the group assigns the partition.)
        await self.evidence.start()
        await self.service.log.start()
        await self.producer.start()
        self.service.view, rebuilt = await catch_up(self.settings.kafka, self.snapshots, self.trust)
        if self.partitioned is not None:
            self.partitioned.owners.partitions = await self._count_partitions()
            self.partitioned.follower.view = self.service.view
            self.work.start("log-follower", self.partitioned.follower.run, interruptible=True)
        self.rebuilt = rebuilt
        self._snapshot_covers = 0 if self.rebuilt.snapshot == "used" else None
        log.info(
            "state rebuilt from the log",
            snapshot=self.rebuilt.snapshot,
            events=self.rebuilt.events,
            skipped=self.rebuilt.skipped,
            refused=self.rebuilt.refused,
            seconds=round(self.rebuilt.seconds, 3),
        )
        partitioned = self.partitioned
        purge = TokenPurge(self.settings.kafka, f"{self.settings.consumer_group}-commands")
        handler = CommandTopicHandler(
            self.service, lambda: self._health, purge, forwarding=self.producer if partitioned else None
        )
        self._runner = ConsumerRunner(
            self.settings.kafka,
            name="tasks-commands",
            topics=[COMMANDS],
            handler=handler,
            dead_letters=PurgingDeadLetters(self.producer, purge),
            group_id=purge.group_id,
            # A command is authenticated record by record: a department's signature, or the
            # tasks service's own proof on one it forwarded (CommandTopicHandler checks both).
            proofs=None,
            decode=CommandParser(self.trust),
            rebalance=CommandPartitions(partitioned.owners) if partitioned else None,
            session_timeout_ms=self.settings.group_session_timeout_ms,
            pipelined=True,
        )
        self._health = self.work.start("command-topic", self._consume_commands)
        self.work.start("token-purge", partial(self._purge_tokens, purge))
        if self.settings.watch_interval_seconds > 0:
            self.work.start("assessments", self._assess)
        if self.settings.snapshot_interval_seconds > 0:
            self.work.start("snapshots", self._snapshot_every_interval)

    async def _count_partitions(self) -> int:
        """Commands and events must have as many partitions, so that one key is one owner on both."""
        async with open_consumer(self.settings.kafka, client_id="tasks-partitions") as consumer:
            events = len(await partitions_of(consumer, [EVENTS]))
            commands = len(await partitions_of(consumer, [COMMANDS]))
        if events != commands:
            raise RuntimeError(f"{EVENTS} has {events} partitions and {COMMANDS} {commands}: they must be equal")
        return events

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

    async def _purge_tokens(self, purge: TokenPurge, health: Health) -> None:
        while True:
            await purge.sweep()
            health.healthy()
            if await self.work.sleep(PURGE_SECONDS):
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
        await self.producer.stop()
        await self.evidence.close()
        if self.rebuilt is not None and self.settings.snapshot_interval_seconds > 0:
            try:
                await self.snapshot()
            except Exception as error:  # derived data: the next start rebuilds from the log
                log.warning("no snapshot at stop", error=repr(error))

    def public_keys(self) -> dict[str, Any]:
        """The tasks service's keys, and the departments' keys it accepts signed commands with."""
        return self.trust.jwks(OWNER, *Department)

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
        if self.partitioned is not None:
            details["deciding_partitions"] = sorted(self.partitioned.owners.owned)
        if self.rebuilt is not None:
            details["events"] = self.rebuilt.events
            details["snapshot"] = self.rebuilt.snapshot
            details["events_since_snapshot"] = self.service.view.events_taken - (self._snapshot_covers or 0)
            details["refused_records"] = self.rebuilt.refused
        return ready, details


def bootstrap(
    settings: TasksSettings | None = None, clock: Clock | None = None, log_: EventLog | None = None
) -> TasksRuntime:
    settings = settings or TasksSettings()
    clock = clock or settings.runtime.clock()
    verifier = TokenVerifier(settings.auth, settings.runtime)  # refuses the dev key outside dev
    keys = KeyFolder.of(settings.runtime)
    signing_key = keys.signing_key(OWNER, create=settings.runtime.env != "prod")
    trust = keys.trust()
    producer = EventProducer(settings.kafka, client_id=f"{settings.transactional_id}-records", signing_key=signing_key)
    snapshots = SnapshotStore(settings.snapshot_file(), SnapshotSeal(signing_key))
    view = LogView(history=TaskHistory(archive=snapshots))
    partitioned = None
    evidence = (
        PostgresEvidenceStore(settings.evidence_folder(), settings.evidence_max_bytes, settings.evidence_dsn)
        if settings.evidence_dsn
        else EvidenceStore(settings.evidence_folder(), settings.evidence_max_bytes)
    )
    if settings.partitioned_writers and log_ is None:
        follower = LogFollower(settings.kafka, view, Outcomes(), ProofGate(trust))
        owners = PartitionedEventLog(
            settings.kafka,
            transactional_prefix=settings.transactional_id,
            signing_key=signing_key,
            caught_up=follower.caught_up,
        )
        service = TaskService(owners, view, clock, ownership=owners, evidence=evidence)
        forwarder = Forwarder(producer, follower.outcomes, owners, service, settings.forward_timeout_seconds)
        partitioned = Partitioned(owners, follower, forwarder)
    else:
        event_log = log_ or KafkaEventLog(
            settings.kafka, transactional_id=settings.transactional_id, signing_key=signing_key
        )
        service = TaskService(event_log, view, clock, evidence=evidence)
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
        trust=trust,
        producer=producer,
        snapshots=snapshots,
        evidence=evidence,
        partitioned=partitioned,
    )
