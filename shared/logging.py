"""Structured JSON logs (structlog) that carry the correlation id of the work in hand."""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Callable, MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog

from shared.settings import RuntimeSettings

# A plain context variable rather than structlog's bound context: it is set for every
# consumed record, and this costs a fraction of a microsecond instead of several.
_correlation: ContextVar[tuple[str | None, str | None] | None] = ContextVar("correlation", default=None)


_SAMPLING_FIELDS = ("unlogged_before", "then")
"""What a sampled line adds: how many of its kind went unlogged before it; that more will not be."""


def _add_correlation(_logger: object, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    current = _correlation.get()
    if current is not None:
        event_dict.setdefault("correlation_id", current[0])
        if current[1] is not None:
            event_dict.setdefault("event_id", current[1])
    return event_dict


def configure_logging(runtime: RuntimeSettings | None = None, *, service: str | None = None) -> None:
    """Route structlog and the standard library's logging through one JSON renderer."""
    runtime = runtime or RuntimeSettings()
    shared_processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        _add_correlation,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    foreign_pre_chain: list[structlog.types.Processor] = [
        *shared_processors,
        structlog.stdlib.ExtraAdder(allow=_SAMPLING_FIELDS),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if runtime.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared_processors, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=foreign_pre_chain,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    handler.addFilter(SampledLibraries())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(runtime.log_level)
    # aiokafka reports every reconnect attempt at INFO/ERROR; warnings are enough.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    structlog.contextvars.clear_contextvars()
    if service:
        structlog.contextvars.bind_contextvars(service=service)


class correlated:
    """Every log line inside the block carries this correlation id (and the event in hand)."""

    __slots__ = ("_token", "_value")

    def __init__(self, correlation_id: str | None, event_id: str | None = None) -> None:
        self._value = (correlation_id, event_id)

    def __enter__(self) -> None:
        self._token = _correlation.set(self._value)

    def __exit__(self, *exc: object) -> None:
        _correlation.reset(self._token)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)


class _Budget:
    """The lines of one kind: ``burst`` a ``period`` of seconds, the others counted."""

    __slots__ = ("_burst", "_clock", "_left", "_period", "_window_ends", "unlogged")

    def __init__(self, burst: int, period: float, clock: Callable[[], float]) -> None:
        self._burst, self._period, self._clock = burst, period, clock
        self._window_ends = float("-inf")
        self._left = 0
        self.unlogged = 0

    def spend(self) -> dict[str, Any] | None:
        """The fields to add to a line that may be logged now; None when it is only counted."""
        now = self._clock()
        if now >= self._window_ends:
            self._window_ends, self._left = now + self._period, self._burst
        if self._left == 0:
            self.unlogged += 1
            return None
        self._left -= 1
        fields: dict[str, Any] = {}
        if self.unlogged:
            fields["unlogged_before"], self.unlogged = self.unlogged, 0
        if self._left == 0:
            fields["then"] = f"more within {self._period:.0f} s are counted, not logged"
        return fields


class Sampled:
    """Warnings of one kind, at most ``burst`` lines a ``period`` of seconds: the others are
    counted, and the next line logged says how many went unlogged. A log read from its beginning
    may hold a warning's cause a hundred thousand times: a tasks start that wrote a line for each
    took a minute where the reading took seconds, and missed its readiness deadline."""

    def __init__(
        self,
        logger: structlog.stdlib.BoundLogger,
        event: str,
        *,
        burst: int = 10,
        period: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._event = event
        self._budget = _Budget(burst, period, clock)

    @property
    def unlogged(self) -> int:
        """The warnings counted and not logged since the last line."""
        return self._budget.unlogged

    def warning(self, **fields: Any) -> None:
        if (added := self._budget.spend()) is not None:
            self._logger.warning(self._event, **fields, **added)


class SampledLibraries(logging.Filter):
    """The lines of the named libraries, sampled as ``Sampled`` does, one budget for each thing
    a logger says (its message before the arguments). While a broker is down, aiokafka logs every
    attempt to reach it at ERROR: 51,818 lines in under three minutes in one service's log."""

    def __init__(
        self,
        libraries: frozenset[str] = frozenset({"aiokafka"}),
        *,
        burst: int = 10,
        period: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._libraries = libraries
        self._budget = functools.partial(_Budget, burst, period, clock)
        self._budgets: dict[tuple[str, int, str], _Budget] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.partition(".")[0] not in self._libraries:
            return True
        kind = (record.name, record.levelno, str(record.msg))
        if (budget := self._budgets.get(kind)) is None:
            budget = self._budgets[kind] = self._budget()
        if (added := budget.spend()) is None:
            return False
        record.__dict__.update(added)
        return True
