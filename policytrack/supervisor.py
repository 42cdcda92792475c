"""Starts the broker and the services as local processes, and stops them in reverse order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from shared.settings import PROJECT_ROOT

KAFKA_SCRIPT = PROJECT_ROOT / "deploy" / "kafka.sh"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port: int

    @property
    def module(self) -> str:
        return f"services.{self.name}"

    @property
    def available(self) -> bool:
        return (PROJECT_ROOT / "services" / self.name / "__main__.py").exists()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


SERVICES = (ServiceSpec("tasks", 8001), ServiceSpec("notifications", 8002), ServiceSpec("audit", 8003))


def kafka(*args: str) -> None:
    subprocess.run([str(KAFKA_SCRIPT), *args], check=True)


@dataclass
class Running:
    spec: ServiceSpec
    process: subprocess.Popen[bytes]
    log: Path


def start_service(spec: ServiceSpec, env: dict[str, str], log_dir: Path) -> Running:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{spec.name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", spec.module], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT
        )
    return Running(spec, process, log)


def wait_until_ready(name: str, url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Polls ``/readyz`` until 200; fails at once if the process exits, or at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}; see {log}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{name} not ready within {timeout:.0f}s; see {log}")


def wait_ready(running: Running, timeout: float) -> None:
    wait_until_ready(running.spec.name, running.spec.url, running.process, running.log, timeout)


def stop_service(running: Running, timeout: float = 20) -> None:
    if running.process.poll() is None:
        running.process.send_signal(signal.SIGTERM)
        try:
            running.process.wait(timeout)
        except subprocess.TimeoutExpired:
            running.process.kill()
            running.process.wait()


@contextmanager
def system(env: dict[str, str] | None = None, ready_timeout: float = 120) -> Iterator[list[Running]]:
    """The broker and every service that exists, ready; on exit stopped, the broker last."""
    env = {**os.environ, **(env or {})}
    log_dir = Path(env.get("POLICYTRACK_DATA_DIR", PROJECT_ROOT / ".data")) / "logs"
    kafka("start")
    started: list[Running] = []
    try:
        for spec in SERVICES:
            if spec.available:
                started.append(start_service(spec, env, log_dir))
        for running in started:
            wait_ready(running, ready_timeout)
        yield started
    finally:
        for running in reversed(started):
            stop_service(running)
        kafka("stop")
