"""SQLite for the audit store: statements and chunks of a stream on the event loop's own
thread, scans of the whole table in a thread of their own.

aiosqlite runs every call (cursor, execute, fetch, close, commit) in its connection's thread
and hands each result back to the event loop: seven hops for a write of the ingest loop, five
for a page of the trail, and under load each hop waits for the interpreter. Measured on an
idle loop, a write of two entries cost 935 µs of CPU that way and 546 µs on the loop's thread;
a page of two entries 636 and 269 µs (the rest is SQLAlchemy's). SQLite in WAL mode answers such statements in
microseconds, so they run where they are called. So do the chunks of export and verification:
read in a thread, each row handed the interpreter back and forth, and an exported entry cost
12-19 µs against 8-10 on the loop's thread. Only scans of every entry (seconds) keep the thread.

Every write runs on the loop's thread, one transaction at a time by construction (nothing in
a transaction waits for anything else), so a write never waits for SQLite's lock held by a
transaction that itself waits for the loop; readers in WAL mode take no lock that a writer
waits for.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Generator
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


class LoopThreadConnection(aiosqlite.Connection):
    """aiosqlite's connection without its thread: each call runs on the caller's thread and
    completes before the awaiting coroutine goes on. Overrides aiosqlite's private
    ``_execute``/``_connect``/``stop`` (pinned in constraints.txt)."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    async def _connect(self) -> LoopThreadConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self) -> Generator[Any, None, LoopThreadConnection]:
        return self._connect().__await__()

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def loop_thread_engine(path: Path) -> AsyncEngine:
    """An engine whose statements run on the event loop's thread."""

    async def connect() -> aiosqlite.Connection:
        # Not bound to one thread: the pool may close a connection from the collector's.
        return await LoopThreadConnection(partial(sqlite3.connect, str(path), check_same_thread=False), 64)

    return _with_pragmas(create_async_engine(f"sqlite+aiosqlite:///{path}", async_creator=connect))


def threaded_engine(path: Path) -> AsyncEngine:
    """An engine whose statements run in each connection's own thread (aiosqlite's way)."""
    return _with_pragmas(create_async_engine(f"sqlite+aiosqlite:///{path}"))


def _with_pragmas(engine: AsyncEngine) -> AsyncEngine:
    event.listen(engine.sync_engine, "connect", _pragmas)
    return engine


def _pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
