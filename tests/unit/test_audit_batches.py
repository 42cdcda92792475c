"""Ingestion chains the next batch while the database writes the previous one: chaining is
pure, so batches chained one after another are the chain of all their records, and the store
takes a batch only if it is chained onto the head it has committed."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import pytest

from services.audit.adapters.chaining import Head, chained
from services.audit.adapters.store import AuditStore
from services.audit.domain.chain import GENESIS, LogRecord


def records(first: int, count: int) -> list[LogRecord]:
    return [
        LogRecord.kept("policy.events", offset % 3, offset, 1_700_000_000_000 + offset, b"k", b'{"n": 1}', ())
        for offset in range(first, first + count)
    ]


def test_batches_chained_one_after_another_are_the_chain_of_all_their_records() -> None:
    whole = chained(records(0, 10), Head(0, GENESIS))
    first = chained(records(0, 4), Head(0, GENESIS))
    second = chained(records(4, 6), first.head)
    assert second.head == whole.head
    assert [row["hash"] for row in first.rows + second.rows] == [row["hash"] for row in whole.rows]
    assert {**first.next_offsets, **second.next_offsets} == whole.next_offsets


async def test_the_store_takes_a_batch_only_onto_the_head_it_has_committed(tmp_path: Path) -> None:
    store = AuditStore(f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")
    await store.open()
    try:
        first = chained(records(0, 4), store.head)
        second = chained(records(4, 2), first.head)
        with pytest.raises(ValueError, match="chained onto entry 4"):
            await store.write(second)  # the batch it follows is not written yet
        assert store.head == Head(0, GENESIS) and await store.count() == 0
        await store.write(first)
        await store.write(second)
        assert store.head == second.head and await store.count() == 6
        assert await store.positions() == {("policy.events", 0): 4, ("policy.events", 1): 5, ("policy.events", 2): 6}
    finally:
        await store.close()


async def test_writing_batches_leaves_nothing_for_the_garbage_collector(tmp_path: Path) -> None:
    """Garbage in reference cycles is freed only by a collection, which stops the event loop:
    statements rebuilt on every write left ~40 such objects each, and under steady load a
    collection every ~10 s held ingest for 80-150 ms."""
    store = AuditStore(f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")
    await store.open()
    try:
        await store.write(chained(records(0, 2), store.head))  # first use: caches fill, once
        gc.collect()
        gc.disable()
        try:
            for first in range(2, 202, 2):
                await store.write(chained(records(first, 2), store.head))
            in_cycles = gc.collect()
        finally:
            gc.enable()
        assert in_cycles < 100, f"100 writes left {in_cycles} objects in reference cycles"
    finally:
        await store.close()


def test_a_chained_batch_holds_its_headers_in_memory_of_their_own_size() -> None:
    """A batch's rows wait in memory until the store writes them (two batches of 5,000 at once in
    ingest). orjson hands back each document in the buffer it wrote it in, at least 4 KiB: the
    rows of 5,000 records took 26.8 MiB more, and a page touched for each, before their stored
    headers were copied to their own size (1.0 MiB)."""
    headers = (("ce_id", b"e-1"), ("ce_type", b"org.policytrack.task.created.v1"), ("writer-proof", b"1." + b"a" * 90))
    batch = [
        LogRecord.kept("policy.events", 0, offset, 1_700_000_000_000, b"k", b'{"n": 1}', headers)
        for offset in range(1000)
    ]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        rows = chained(batch, Head(0, GENESIS)).rows
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # A row's own dict and columns are about 1 KB; its headers took 4 KiB more before.
    assert held < 2_000 * len(rows), f"{held / len(rows):,.0f} bytes held a row"
