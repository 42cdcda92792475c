"""The services in process, against in-memory stand-ins for the log: their HTTP edges through
an ASGI client, in milliseconds. The same behaviour is proven against the real broker by the
integration tests."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from fastapi import FastAPI

from services.notifications.adapters.addresses import AddressPolicy, Resolver, system_resolver
from services.notifications.adapters.delivery import Deliveries, RetryPolicy
from services.notifications.adapters.sealing import Sealer
from services.notifications.adapters.snapshots import ScheduleSnapshots
from services.notifications.application.service import NotificationService
from services.notifications.bootstrap import NotificationsRuntime
from services.notifications.domain.schedule import Policy, Schedule
from services.notifications.entrypoints.app import create_app as create_notifications_app
from services.notifications.settings import NotificationsSettings
from services.tasks.adapters.event_log import InMemoryEventLog
from services.tasks.adapters.rebuild import RebuildReport
from services.tasks.application.view import LogView, Placement
from services.tasks.bootstrap import TasksRuntime, bootstrap
from services.tasks.entrypoints.app import create_app
from services.tasks.settings import TasksSettings
from shared.auth import TokenVerifier
from shared.bounds import Bound, Held
from shared.contract.envelope import CloudEvent
from shared.provenance.keys import KeyFolder
from shared.provenance.sealing import SnapshotSeal
from shared.settings import RuntimeSettings


@dataclass
class InProcessTasks:
    runtime: TasksRuntime
    log: InMemoryEventLog
    client: httpx.AsyncClient
    app: FastAPI

    @property
    def events(self) -> list[Any]:
        return self.log.events


_SCRATCH = tempfile.TemporaryDirectory(prefix="policytrack-in-process-", ignore_cleanup_errors=True)
SCRATCH = Path(_SCRATCH.name)
"""Keys and data of the services run in process, removed when the tests' process ends: never the
``.keys`` and ``.data`` of ``make run``."""


def scratch_runtime() -> RuntimeSettings:
    return RuntimeSettings(env="dev", data_dir=SCRATCH / "data", keys_dir=SCRATCH / "keys")


def rebuilt_from(log: InMemoryEventLog) -> TasksRuntime:
    """A runtime whose state is rebuilt from ``log``, as after a restart."""
    runtime = bootstrap(TasksSettings(runtime=scratch_runtime()), log_=log)
    restore(runtime, log.events)
    return runtime


def restore(runtime: TasksRuntime, events: list[CloudEvent[Any]]) -> None:
    """The runtime as if restarted on a log holding exactly ``events``."""
    log = runtime.service.log
    assert isinstance(log, InMemoryEventLog)
    log.events = list(events)
    runtime.service.view = LogView()
    for offset, event in enumerate(events):
        runtime.service.view.take(event, Placement(event.topic, 0, offset))
    runtime.rebuilt = RebuildReport(events=len(events))


@asynccontextmanager
async def in_process_tasks(log: InMemoryEventLog | None = None) -> AsyncIterator[InProcessTasks]:
    log = log or InMemoryEventLog()
    runtime = rebuilt_from(log)
    app = create_app(runtime)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://tasks.test", timeout=10) as client:
        yield InProcessTasks(runtime, log, client, app)


class SlowLog(InMemoryEventLog):
    """An in-memory log whose appends wait for ``release``: a request stays in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.submitted = 0

    def submit(self, *args: Any, **kwargs: Any) -> asyncio.Future[None]:
        self.submitted += 1
        return super().submit(*args, **kwargs)

    async def written(self) -> None:
        await self.release.wait()


class RecordingProducer:
    """Stands in for the event producer in process: what would go on the log, kept in a list."""

    def __init__(self) -> None:
        self.published: list[CloudEvent[Any]] = []
        self.dead_letters: list[object] = []

    async def publish(self, event: CloudEvent[Any]) -> None:
        self.published.append(event)

    async def publish_all(self, events: list[CloudEvent[Any]]) -> None:
        self.published += events

    async def enqueue(self, event: CloudEvent[Any]) -> asyncio.Future[None]:
        self.published.append(event)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def dead_letter(self, failure: object, **where: object) -> None:
        self.dead_letters.append((failure, where))


@dataclass
class InProcessNotifications:
    service: NotificationService
    producer: RecordingProducer
    client: httpx.AsyncClient


@asynccontextmanager
async def in_process_notifications(
    resolve: Resolver | None = None, dev: bool = True
) -> AsyncIterator[InProcessNotifications]:
    settings = NotificationsSettings(
        runtime=scratch_runtime(),
        sealing_key=Fernet.generate_key().decode(),
        subscriptions=Bound(per_user=1_000, in_all=10_000),  # some tests subscribe once per department and role
    )
    producer = RecordingProducer()
    addresses = AddressPolicy(dev=dev, allow_private=False, allowed_hosts=frozenset())
    retry = RetryPolicy(timedelta(seconds=2), 0.05, 0.1, 1.0)
    resolver = resolve or system_resolver
    deliveries = Deliveries(producer, retry, addresses, 100, resolve=resolver)
    service = NotificationService(
        Schedule(Policy()), producer, deliveries, Sealer(settings.sealing_key or ""), addresses, resolve=resolver
    )
    verifier = TokenVerifier(settings.auth, settings.runtime)
    keys = KeyFolder.of(settings.runtime)
    seal = SnapshotSeal(keys.signing_key("notifications", create=True))
    snapshots = ScheduleSnapshots(
        settings.snapshot_file(), seal
    )  # never read or written: nothing runs the scheduler here
    trust = keys.trust()
    streams = Held("alert streams", settings.streams)
    runtime = NotificationsRuntime(settings, verifier, service, trust, producer, snapshots, streams)  # type: ignore[arg-type]  # the stand-in
    transport = httpx.ASGITransport(app=create_notifications_app(runtime), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://notifications.test", timeout=10) as client:
        yield InProcessNotifications(service, producer, client)
    await deliveries.close()
