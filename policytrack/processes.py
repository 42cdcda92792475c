"""Service processes: started as production runs them (``python -m services.<name>``), waited
for, stopped, killed. The one place that does this, for ``make run``'s supervisor and for the
tests alike."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from shared.settings import PROJECT_ROOT


class NotReady(RuntimeError):
    """A process exited or did not become ready in time; the message says where its log is."""


@dataclass
class ServiceProcess:
    """One service process; ``env`` is its whole environment."""

    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, wait: bool = True, timeout: float = 60) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.name}"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=PROJECT_ROOT,
            )
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        """Until ``/readyz`` answers 200; NotReady at once if the process exits."""
        self._wait_for("/readyz", "ready", timeout)

    def wait_alive(self, timeout: float = 60) -> None:
        """Until ``/healthz`` answers: up, though perhaps refusing to work (``/readyz`` says why)."""
        self._wait_for("/healthz", "alive", timeout)

    def _wait_for(self, path: str, what: str, timeout: float) -> None:
        assert self.process is not None, f"{self.name} was not started"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise NotReady(f"{self.name} exited with {self.process.returncode}; see {self.log_path}:\n{self.log()}")
            try:
                # Once this process answers on the port, nothing else can be listening on it.
                if self._answering() and httpx.get(f"{self.url}{path}", timeout=2).status_code == 200:
                    return
            except (httpx.HTTPError, ValueError):  # not answering yet, or not a service of ours
                pass
            time.sleep(0.1)
        raise NotReady(f"{self.name} not {what} within {timeout:.0f}s; see {self.log_path}:\n{self.log()}")

    def _answering(self) -> bool:
        """Whether the process listening on the port is this one (another may have taken the
        port while this one was down, or before it bound it)."""
        assert self.process is not None
        alive = httpx.get(f"{self.url}/healthz", timeout=2)
        said = alive.json() if alive.status_code == 200 else None
        return isinstance(said, dict) and said.get("pid") == self.process.pid

    def readiness(self) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(f"{self.url}/readyz", timeout=10).json()
        return answer

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM, then SIGKILL if it has not finished by ``timeout``."""
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.running:
            assert self.process is not None
            self.process.kill()
            self.process.wait()

    def restart(self, *, timeout: float = 60) -> ServiceProcess:
        self.stop()
        return self.start(timeout=timeout)

    def log(self, tail: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:] if self.log_path.exists() else ""
