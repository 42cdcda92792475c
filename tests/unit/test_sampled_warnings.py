"""A warning whose cause the log holds a hundred thousand times is logged a few times a minute,
with a count of the others: a tasks start over a log of events that fit no aggregate wrote a line
for each (50,001 lines; 62.7 s to start, its readiness deadline 60 s), and the reading itself is
a second's work."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from services.tasks.adapters.rebuild import RebuildReport, take_record
from services.tasks.application.view import LogView
from shared.contract import catalog as c
from shared.contract.codec import encode
from shared.contract.envelope import new_event
from shared.logging import Sampled, configure_logging


class Recorded(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record)


@pytest.fixture
def warnings_of_the_rebuild() -> Any:
    configure_logging()
    recorded = Recorded()
    logger = logging.getLogger("services.tasks.adapters.rebuild")
    logger.addHandler(recorded)
    yield recorded.lines
    logger.removeHandler(recorded)


def unfit_record(offset: int) -> ConsumerRecord[bytes, bytes]:
    """Progress on a task the log never created."""
    event = new_event(c.TaskProgressReported(task_id=f"t-never-{offset}", percent=5), actor="u-jilin-1")
    encoded = encode(event)
    return ConsumerRecord(
        encoded.topic,
        0,
        offset,
        0,
        0,
        encoded.key,
        encoded.value,
        None,
        len(encoded.key),
        len(encoded.value),
        list(encoded.headers),
    )


def test_a_rebuild_counts_every_event_that_fits_no_aggregate_and_logs_a_few(
    warnings_of_the_rebuild: list[logging.LogRecord],
) -> None:
    view, report = LogView(), RebuildReport()
    for offset in range(1000):
        assert take_record(view, unfit_record(offset), report) is None
    assert report.skipped == 1000 and report.events == 0
    assert len(warnings_of_the_rebuild) <= 10


class Lines:
    def __init__(self) -> None:
        self.logged: list[dict[str, Any]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.logged.append({"event": event, **fields})


def test_after_a_quiet_period_the_next_line_says_how_many_went_unlogged() -> None:
    now = [0.0]
    lines = Lines()
    sampled = Sampled(lines, "skipped", burst=3, period=60, clock=lambda: now[0])  # type: ignore[arg-type]  # a logger's warning alone
    for n in range(10):
        sampled.warning(n=n)
    assert [line["n"] for line in lines.logged] == [0, 1, 2]
    assert "then" in lines.logged[-1] and sampled.unlogged == 7
    now[0] = 59.9
    sampled.warning(n=10)
    assert len(lines.logged) == 3
    now[0] = 60.0
    sampled.warning(n=11)
    assert lines.logged[-1] == {"event": "skipped", "n": 11, "unlogged_before": 8}
    assert sampled.unlogged == 0
