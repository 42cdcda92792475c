"""Wires the tasks service: settings -> log, state, command handling, command topic, HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiokafka import ConsumerRecord

from services.tasks.handlers import (
    Clock,
    CommandRecord,
    TaskService,
    handle_command_record,
    parse_command_record,
    utc_now,
)
from services.tasks.settings import TasksSettings
from services.tasks.store import EventLog, IdempotencyIndex, RebuildReport, rebuild
from shared.auth import TokenVerifier
from shared.contract.topics import COMMANDS
from shared.domain.evolve import Projection
from shared.kafka.consumer import ConsumerRunner
from shared.kafka.producer import EventProducer
from shared.logging import get_logger
from shared.supervision import BackgroundWork

log = get_logger(__name__)


@dataclass
class TasksRuntime:
    settings: TasksSettings
    verifier: TokenVerifier
    service: TaskService
    dead_letters: EventProducer
    rebuilt: RebuildReport | None = None
    work: BackgroundWork = field(default_factory=BackgroundWork)
    _command_runner: ConsumerRunner[CommandRecord] | None = None

    async def start(self) -> None:
        # Registering the transactional id first fences any older instance before we read
        # the log, so nothing can be appended behind our back while we rebuild.
        await self.service.log.start()
        await self.dead_letters.start()
        self.rebuilt = await rebuild(self.settings.kafka, self.service.projection, self.service.index)
        log.info("state rebuilt from the log", events=self.rebuilt.events, skipped=self.rebuilt.skipped,
                 seconds=round(self.rebuilt.seconds, 3))  # fmt: skip
        self._command_runner = ConsumerRunner(
            self.settings.kafka, name="tasks-commands", topics=[COMMANDS], handler=self._on_command,
            dead_letters=self.dead_letters, group_id=f"{self.settings.consumer_group}-commands",
            decode=parse_command_record,
        )  # fmt: skip
        self.work.start("command-topic", self._command_runner.run)

    async def stop(self) -> None:
        if self._command_runner is not None:
            self._command_runner.stop()
        await self.work.stop()
        await self.service.log.stop()
        await self.dead_letters.stop()

    async def _on_command(self, command: CommandRecord, _record: ConsumerRecord) -> None:
        await handle_command_record(self.service, self.verifier, command)

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        fenced = self.service.log.fenced
        working, background = self.work.readiness()
        ready = self.rebuilt is not None and not fenced and working
        details: dict[str, Any] = {"rebuilt": self.rebuilt is not None, "fenced": fenced,
                                   "command_topic": background.get("command-topic", {}).get("ok", False),
                                   "background": background}  # fmt: skip
        if self.rebuilt is not None:
            details["events"] = self.rebuilt.events
        return ready, details


def bootstrap(settings: TasksSettings | None = None, clock: Clock = utc_now) -> TasksRuntime:
    settings = settings or TasksSettings()
    verifier = TokenVerifier(settings.auth, settings.runtime)  # refuses the dev key outside dev
    service = TaskService(EventLog(settings.kafka, transactional_id=settings.transactional_id), Projection(),
                          IdempotencyIndex(), clock)  # fmt: skip
    dead_letters = EventProducer(settings.kafka, client_id=f"{settings.transactional_id}-deadletters")
    return TasksRuntime(settings=settings, verifier=verifier, service=service, dead_letters=dead_letters)
