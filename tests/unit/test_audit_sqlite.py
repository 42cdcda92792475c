"""The audit store's SQLite engines: short statements on the event loop's thread (no hop to
a thread and back for each call), long reads in a thread of their own."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.audit.adapters.chaining import chained
from services.audit.adapters.schema import StoredEntry
from services.audit.adapters.sqlite import loop_thread_engine, threaded_engine
from services.audit.adapters.store import ROWS_PER_STATEMENT, AuditStore, EntryFilter
from tests.unit.test_audit_batches import records


async def thread_of_statements(engine: AsyncEngine) -> int:
    def register(connection: object, _record: object) -> None:
        connection.create_function("thread_id", 0, threading.get_ident)  # type: ignore[attr-defined]  # SQLAlchemy's adapted connection

    event.listen(engine.sync_engine, "connect", register)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT thread_id()"))).scalar_one())
    finally:
        await engine.dispose()


async def test_short_statements_run_on_the_event_loop_s_thread(tmp_path: Path) -> None:
    assert await thread_of_statements(loop_thread_engine(tmp_path / "audit.db")) == threading.get_ident()


async def test_long_reads_run_in_a_thread_of_their_own(tmp_path: Path) -> None:
    assert await thread_of_statements(threaded_engine(tmp_path / "audit.db")) != threading.get_ident()


async def test_what_is_written_on_the_loop_s_thread_is_what_the_threaded_reader_streams(tmp_path: Path) -> None:
    store = AuditStore(f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")
    await store.open()
    try:
        for first in range(0, 30, 3):
            await store.write(chained(records(first, 3), store.head))
        streamed = [row.offset async for rows in store.stream(StoredEntry, EntryFilter(), chunk=7) for row in rows]
        paged, more = await store.page(StoredEntry, EntryFilter(), 100)
        assert streamed == [row.offset for row in paged] == list(range(30)) and not more
    finally:
        await store.close()


async def test_a_batch_of_more_rows_than_one_statement_takes_is_stored_whole_with_its_tree(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"
    store = AuditStore(url)
    await store.open()
    batch = chained(records(0, 2 * ROWS_PER_STATEMENT + 50), store.head)
    try:
        await store.write(batch)
    finally:
        await store.close()
    reopened = AuditStore(url)
    await reopened.open()
    try:
        stored = [row async for rows in reopened.stream(StoredEntry, EntryFilter(), chunk=64) for row in rows]
        assert [(r.seq, r.offset, r.key, r.value, r.headers, r.prev_hash, r.hash) for r in stored] == [
            (r["seq"], r["offset"], r["key"], r["value"], r["headers"], r["prev_hash"], r["hash"]) for r in batch.rows
        ]
        nodes = {(level, index): digest for level, index, digest in batch.nodes}
        assert await reopened.tree_nodes(set(nodes)) == nodes
        assert reopened.head == batch.head
    finally:
        await reopened.close()
