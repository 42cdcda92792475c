"""The query columns of chunks of entries, derived from their records for verification: in a
process of its own when the trail is long, so that decoding (two fifths of verifying an entry)
runs on the second core while the walk checks the chain and the log."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from services.audit.adapters.chaining import DERIVED, decode_headers, derive
from services.audit.adapters.schema import StoredEntry
from services.audit.domain.chain import LogRecord
from shared.process import processes_apart

APART_FROM = 100_000
"""Entries from which a walk derives in a process of its own: below, starting it (the first
time, about a second for its server to import the code) costs more than it saves."""

StoredRecord = tuple[bytes | None, bytes | None, bytes]
"""An entry's key, value and stored headers: all its columns are derived from."""


def derived_columns(records: Sequence[StoredRecord]) -> list[tuple[Any, ...]]:
    """Each record's derived columns, in ``DERIVED`` order."""
    return [
        derived_columns_of(LogRecord("", 0, 0, 0, key, value, decode_headers(headers)))
        for key, value, headers in records
    ]


def derived_columns_of(record: LogRecord) -> tuple[Any, ...]:
    """A record's derived columns, in ``DERIVED`` order."""
    derived = derive(record)
    return tuple(derived[name] for name in DERIVED)


class Derivation:
    """Derives chunks of entries ahead of the walk: ``ahead(chunk)`` starts, awaiting its
    result gives the columns. Used as an async context manager, which starts the process (for
    ``entries`` from ``apart_from`` on) and ends it."""

    def __init__(self, entries: int, apart_from: int = APART_FROM) -> None:
        self._apart = entries >= apart_from
        self._pool: ProcessPoolExecutor | None = None
        self._processes = contextlib.ExitStack()

    @property
    def apart(self) -> bool:
        return self._pool is not None

    def ahead(self, chunk: Sequence[StoredEntry]) -> asyncio.Future[list[tuple[Any, ...]]]:
        records = [(row.key, row.value, row.headers) for row in chunk]
        if self._pool is not None:
            try:
                return asyncio.wrap_future(self._pool.submit(derived_columns, records))
            except (BrokenProcessPool, RuntimeError):
                self._pool = None
        here: asyncio.Future[list[tuple[Any, ...]]] = asyncio.get_running_loop().create_future()
        here.set_result(derived_columns(records))
        return here

    async def columns(
        self, chunk: Sequence[StoredEntry], started: asyncio.Future[list[tuple[Any, ...]]]
    ) -> list[tuple[Any, ...]]:
        """The columns ``ahead(chunk)`` started; derived here if the process failed."""
        try:
            return await started
        except BrokenProcessPool:
            self._pool = None
            return derived_columns([(row.key, row.value, row.headers) for row in chunk])

    async def __aenter__(self) -> Derivation:
        if self._apart:
            self._pool = self._processes.enter_context(processes_apart(1, preload=(__name__,)))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._pool = None
        self._processes.close()
