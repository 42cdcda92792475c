"""The one clock: what "now" is, injected where time matters so tests can set it. In development
a scenario may play two years of work in minutes on a simulated clock that every service reads
from one file (``POLICYTRACK_CLOCK_FILE``); production refuses that setting."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class SimulatedClock:
    """Now as the file says: the moment it holds, plus the real time passed since it was written;
    without the file, the real time. The file is looked at no more than every ``recheck`` seconds."""

    def __init__(self, path: Path, recheck: float = 0.05) -> None:
        self.path = path
        self._recheck = recheck
        self._checked = float("-inf")
        self._offset = timedelta(0)

    def __call__(self) -> datetime:
        if time.monotonic() - self._checked >= self._recheck:
            self._offset = self._read_offset()
            self._checked = time.monotonic()
        return datetime.now(UTC) + self._offset

    def _read_offset(self) -> timedelta:
        try:
            moment, _, written = self.path.read_text().strip().partition(" set at ")
        except FileNotFoundError:
            return timedelta(0)
        return datetime.fromisoformat(moment) - datetime.fromisoformat(written)


def set_simulated_time(path: Path, moment: datetime) -> None:
    """Moves every service reading ``path`` to ``moment`` (written whole, then renamed over)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(f"{moment.astimezone(UTC).isoformat()} set at {datetime.now(UTC).isoformat()}")
    partial.replace(path)


def clock_of(clock_file: Path | None) -> Clock:
    return SimulatedClock(clock_file) if clock_file is not None else utc_now
