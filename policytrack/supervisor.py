"""``make run``'s supervisor: the broker and the services as local processes. A service that
dies is started again (capped backoff, logged, counted in the status file); everything is
stopped, in reverse order and the broker last, only when the supervisor itself is told to."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from policytrack.processes import NotReady, ServiceProcess
from shared.settings import PROJECT_ROOT
from shared.supervision import Backoff

KAFKA_SCRIPT = PROJECT_ROOT / "deploy" / "kafka.sh"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


SERVICES = (
    ServiceSpec("tasks", 8001),
    ServiceSpec("notifications", 8002),
    ServiceSpec("audit", 8003),
    ServiceSpec("web", 8000),
)
AUDIT, DASHBOARD = SERVICES[2], SERVICES[3]


def kafka(*args: str) -> None:
    subprocess.run([str(KAFKA_SCRIPT), *args], check=True)


def data_dir(env: dict[str, str]) -> Path:
    return Path(env.get("POLICYTRACK_DATA_DIR", PROJECT_ROOT / ".data"))


def status_file(env: dict[str, str] | None = None) -> Path:
    return data_dir(env or dict(os.environ)) / "run" / "status.json"


@dataclass
class Supervised:
    service: ServiceProcess
    restarts: int = 0
    last_exit: int | None = None
    restarted_at: str | None = None
    failures_in_a_row: int = 0
    next_start: float = 0.0

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.service.name,
            "url": self.service.url,
            "log": str(self.service.log_path),
            "pid": self.service.process.pid if self.service.process else None,
            "running": self.service.running,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "restarted_at": self.restarted_at,
        }


@dataclass
class Supervisor:
    """Watches the services from a thread of its own and starts again any that exited."""

    services: list[Supervised]
    status_path: Path
    backoff: Backoff = field(default_factory=lambda: Backoff(base_seconds=1, max_seconds=30))
    say: Any = print
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._write_status()
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            for supervised in self.services:
                self._look_after(supervised)
            self._write_status()

    def _look_after(self, supervised: Supervised) -> None:
        service = supervised.service
        if service.running or time.monotonic() < supervised.next_start:
            if service.running and supervised.failures_in_a_row and self._up_for(supervised) > 30:
                supervised.failures_in_a_row = 0
            return
        if supervised.next_start == 0.0:
            assert service.process is not None
            supervised.last_exit = service.process.returncode
            supervised.failures_in_a_row += 1
            delay = self.backoff.delay(supervised.failures_in_a_row)
            supervised.next_start = time.monotonic() + delay
            self.say(
                f"{service.name} exited with {supervised.last_exit}; starting it again in {delay:.1f}s "
                f"(log: {service.log_path})"
            )
            return
        service.start(wait=False)
        supervised.restarts += 1
        supervised.next_start = 0.0
        supervised.restarted_at = datetime.now(UTC).isoformat()
        self.say(f"{service.name} started again (restart {supervised.restarts})")

    def _up_for(self, supervised: Supervised) -> float:
        if supervised.restarted_at is None:
            return float("inf")
        return (datetime.now(UTC) - datetime.fromisoformat(supervised.restarted_at)).total_seconds()

    def _write_status(self) -> None:
        self.status_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.status_path.with_suffix(".tmp")
        temporary.write_bytes(
            orjson.dumps(
                {
                    "updated_at": datetime.now(UTC).isoformat(),
                    "supervisor": os.getpid(),
                    "services": [s.describe() for s in self.services],
                }
            )
        )
        temporary.replace(self.status_path)


@contextmanager
def system(
    env: dict[str, str] | None = None, ready_timeout: float = 120, say: Any = print
) -> Iterator[list[ServiceProcess]]:
    """The broker and every service, ready, and kept running; on exit stopped, the broker last."""
    env = {**os.environ, **(env or {})}
    log_dir = data_dir(env) / "logs"
    kafka("start")
    started: list[ServiceProcess] = []
    supervisor: Supervisor | None = None
    try:
        ports = {spec.name: int(env.get(f"POLICYTRACK_{spec.name.upper()}_PORT", spec.port)) for spec in SERVICES}
        # The dashboard reads the other services wherever they were put.
        env.update(
            {
                f"POLICYTRACK_WEB_{name.upper()}_URL": f"http://127.0.0.1:{port}"
                for name, port in ports.items()
                if name != "web"
            }
        )
        for spec in SERVICES:
            service = ServiceProcess(spec.name, ports[spec.name], env, log_dir / f"{spec.name}.log")
            started.append(service.start(wait=False))
        for service in started:
            service.wait_ready(ready_timeout)
        supervisor = Supervisor([Supervised(service) for service in started], status_file(env), say=say)
        supervisor.start()
        yield started
    except NotReady as error:
        raise RuntimeError(str(error).splitlines()[0]) from None
    finally:
        if supervisor is not None:
            supervisor.stop()
        for service in reversed(started):
            service.stop()
        kafka("stop")
