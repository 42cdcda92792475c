"""The development clock a scenario plays two years on: every service reading the file is moved
together; without the file it is the real time; outside development the setting is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.clock import SimulatedClock, set_simulated_time
from shared.settings import RuntimeSettings


def test_the_simulated_clock_reads_the_moment_in_the_file_and_runs_on_from_it(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    clock = SimulatedClock(path, recheck=0)
    assert abs(clock() - datetime.now(UTC)) < timedelta(seconds=1), "no file: the real time"
    then = datetime(2024, 12, 4, 1, 0, tzinfo=UTC)
    set_simulated_time(path, then)
    assert then <= clock() < then + timedelta(seconds=1)
    set_simulated_time(path, then + timedelta(days=30))
    assert then + timedelta(days=30) <= clock() < then + timedelta(days=30, seconds=1)
    path.unlink()
    assert abs(clock() - datetime.now(UTC)) < timedelta(seconds=1)


def test_production_refuses_a_simulated_clock(tmp_path: Path) -> None:
    assert RuntimeSettings(env="dev", clock_file=tmp_path / "clock").clock_file is not None
    with pytest.raises(ValidationError, match="for development"):
        RuntimeSettings(env="prod", clock_file=tmp_path / "clock")
