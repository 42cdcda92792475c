"""A warning whose cause the log holds a hundred thousand times is logged a few times a minute,
with a count of the others: a tasks start over a log of events that fit no aggregate wrote a line
for each (50,001 lines; 62.7 s to start, its readiness deadline 60 s), and the reading itself is
a second's work."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from services.tasks.adapters.rebuild import RebuildReport, take_record
from services.tasks.application.view import LogView
from shared.contract import catalog as c
from shared.contract.codec import encode
from shared.contract.envelope import new_event
from shared.logging import Sampled, SampledLibraries, configure_logging


class Recorded(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record)


@pytest.fixture
def suite_logging_after() -> Iterator[None]:
    """The suite's logging again after a test that configures the services' own: a handler left
    writing to a test's captured (and by then closed) stream fails every later line."""
    root, library = logging.getLogger(), logging.getLogger("aiokafka")
    handlers, level, library_level = root.handlers[:], root.level, library.level
    yield
    # pytest's own capturing handlers come and go with each phase of a test: those of now stay.
    root.handlers[:] = [*(h for h in handlers if not _of_pytest(h)), *(h for h in root.handlers if _of_pytest(h))]
    root.setLevel(level)
    library.setLevel(library_level)


def _of_pytest(handler: logging.Handler) -> bool:
    return type(handler).__module__.startswith("_pytest")


@pytest.fixture
def warnings_of_the_rebuild(suite_logging_after: None) -> Any:
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


def test_a_client_library_reporting_each_reconnect_is_sampled_by_what_it_says(
    capsys: pytest.CaptureFixture[str], suite_logging_after: None
) -> None:
    """While a broker was down, aiokafka wrote a line for each attempt to reach it: 28,365
    ``Unable connect to node`` and 23,453 ``Unable to update metadata`` lines (8.8 MB) in a tasks
    service's log in under three minutes of a CI run."""
    configure_logging()
    connection, cluster = logging.getLogger("aiokafka.conn"), logging.getLogger("aiokafka.cluster")
    for attempt in range(1000):
        connection.error("Unable connect to node with id %s: %s", 1, f"refused, attempt {attempt}")
        cluster.error("Unable to update metadata from %r", attempt)
    logging.getLogger("services.tasks").warning("our own warning")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    by_logger = Counter(line["logger"] for line in lines)
    assert 1 <= by_logger["aiokafka.conn"] <= 10 and 1 <= by_logger["aiokafka.cluster"] <= 10
    assert by_logger["services.tasks"] == 1


def test_the_first_library_line_after_a_quiet_period_says_how_many_went_unlogged(
    capsys: pytest.CaptureFixture[str], suite_logging_after: None
) -> None:
    configure_logging()
    now = [0.0]
    (handler,) = logging.getLogger().handlers
    handler.filters[:] = [SampledLibraries(burst=2, period=60, clock=lambda: now[0])]
    connection = logging.getLogger("aiokafka.conn")
    for attempt in range(5):
        connection.error("Unable connect to node with id %s: %s", 1, attempt)
    now[0] = 60.0
    connection.error("Unable connect to node with id %s: %s", 1, 5)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["event"][-1] for line in lines] == ["0", "1", "5"]
    assert "then" in lines[1] and lines[2]["unlogged_before"] == 3
