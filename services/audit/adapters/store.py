"""The append-only audit store: SQLite (WAL) by default, PostgreSQL when a DSN is set, one
code path (SQLAlchemy 2 Core, async; on SQLite, short statements run on the event loop's
thread, see ``sqlite.py``). The consumer's offsets are written in the same
transaction as the entries, so a crash neither loses nor duplicates a record. Its tables are in
``schema.py`` (made by ``migrations/``); entries are chained before they come here
(``chaining.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import (
    Integer,
    bindparam,
    func,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import Select

from services.audit.adapters import migrations
from services.audit.adapters.chaining import ChainedBatch, Head, iso, log_record
from services.audit.adapters.schema import (
    ENTRY_COLUMNS,
    RefusedRecord,
    Shape,
    StoredEntry,
    checkpoints,
    entries,
    offsets,
    refused,
    task_access,
    tree,
    verifications,
)
from services.audit.adapters.sqlite import loop_thread_engine, threaded_engine
from services.audit.domain.chain import GENESIS, canonical
from shared.logging import get_logger
from shared.transparency.merkle import Frontier, Node, frontier_nodes, root_from

log = get_logger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """What one moment of the store holds: entries up to ``head`` and, per partition, the
    next offset to ingest. Entries are append-only, so what it covers never changes."""

    head: Head
    next_offsets: dict[tuple[str, int], int]


@dataclass(frozen=True)
class EntryFilter:
    task_id: str | None = None
    actor: str | None = None
    department: str | None = None
    event_types: tuple[str, ...] | None = None
    """Any of these types (the versions of one type the trail may hold)."""
    since: datetime | None = None
    until: datetime | None = None
    event_id: str | None = None
    after_sequence: int = 0
    through_sequence: int | None = None
    visible_to_department: str | None = None
    """When set, only entries of tasks this department leads or supports."""


_EQUAL_TO = {
    "task_id": entries.c.task_id,
    "actor": entries.c.actor,
    "department": entries.c.actordept,
    "event_id": entries.c.event_id,
}


def page_query(shape: type[Shape], where: EntryFilter) -> tuple[Select[Any], dict[str, Any]]:
    """The statement that reads a page of ``shape`` matching ``where`` (the page's size is its
    ``limit`` parameter), and the values of its parameters."""
    values: dict[str, Any] = {"after": where.after_sequence}
    if where.through_sequence is not None:
        values["through"] = where.through_sequence
    values |= {name: value for name in _EQUAL_TO if (value := getattr(where, name)) is not None}
    if where.event_types is not None:
        values["event_types"] = list(where.event_types)
    if where.since is not None:
        values["since"] = iso(where.since)
    if where.until is not None:
        values["until"] = iso(where.until)
    if where.visible_to_department is not None:
        values["seen_by"] = where.visible_to_department
    return _page_statement(shape._fields, frozenset(values)), values


@functools.cache
def _page_statement(columns: tuple[str, ...], filtered_by: frozenset[str]) -> Select[Any]:
    """One statement per shape (its ``columns``) and set of filters, made once and kept: a page
    (a query of the dashboard, each wait of a live reader of the trail) built its statement anew,
    36-76 µs, and SQLAlchemy then walked the new statement for its cache key, which it keeps on a
    statement it sees again (figures in docs/performance.md)."""
    query = select(*(entries.c[name] for name in columns)).where(entries.c.seq > bindparam("after"))
    if "through" in filtered_by:
        query = query.where(entries.c.seq <= bindparam("through"))
    for name, column in _EQUAL_TO.items():
        if name in filtered_by:
            query = query.where(column == bindparam(name))
    if "event_types" in filtered_by:
        query = query.where(entries.c.event_type.in_(bindparam("event_types", expanding=True)))
    if "since" in filtered_by:
        query = query.where(entries.c.event_time >= bindparam("since"))
    if "until" in filtered_by:
        query = query.where(entries.c.event_time <= bindparam("until"))
    if "seen_by" in filtered_by:
        mine = select(task_access.c.task_id).where(task_access.c.department == bindparam("seen_by"))
        query = query.where(entries.c.task_id.in_(mine))
    return query.order_by(entries.c.seq).limit(bindparam("limit", type_=Integer))


class AuditStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine
        """Every statement but the long reads: on SQLite, run on the event loop's thread."""
        self._reader: AsyncEngine
        """Scans of every entry (their positions, at start): on SQLite, in a thread of their own."""
        if url.startswith("sqlite"):
            path = Path(url.split("///", 1)[1])
            _create_private_file(path)
            self.engine, self._reader = loop_thread_engine(path), threaded_engine(path)
            self._dialect: ModuleType = sqlite
        else:
            self.engine = self._reader = create_async_engine(url)
            self._dialect = postgresql
        self._written = asyncio.Event()
        self.head = Head(0, GENESIS)
        compiled = entries.insert().compile(dialect=self.engine.dialect, column_keys=[c.name for c in entries.c])
        self._insert_sql = compiled.string
        self._insert_values = itemgetter(*(compiled.positiontup or [c.name for c in entries.c]))
        per_statement = ROWS_PER_STATEMENT if self._dialect is sqlite else 1
        self._entry_rows = _RowsInserter(self._insert_sql, per_statement)
        nodes_sql = tree.insert().compile(dialect=self.engine.dialect, column_keys=["level", "idx", "hash"])
        self._node_rows = _RowsInserter(nodes_sql.string, per_statement)
        # Built once: ``excluded`` is a new alias of the table on every call, and its columns
        # are reference cycles that only the garbage collector frees. Built per write, ~130
        # a second under load, they made a collection every ~10 s that stopped ingest for
        # 80-150 ms (the trail's p99 at 200 commands/s).
        upsert = self._dialect.insert(offsets)
        self._upsert_offsets = upsert.on_conflict_do_update(
            index_elements=[offsets.c.topic, offsets.c.partition], set_={"next_offset": upsert.excluded.next_offset}
        )
        self._insert_access = self._dialect.insert(task_access).on_conflict_do_nothing()
        self._select_nodes = select(tree.c.level, tree.c.idx, tree.c.hash).where(
            tree.c.level.in_(bindparam("levels", expanding=True)), tree.c.idx.in_(bindparam("indexes", expanding=True))
        )

    async def open(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(migrations.upgrade)
            last = (
                await conn.execute(select(entries.c.seq, entries.c.hash).order_by(entries.c.seq.desc()).limit(1))
            ).first()
        if last is None:
            self.head = Head(0, GENESIS)
            return
        nodes = frontier_nodes(last.seq)
        found = await self.tree_nodes(set(nodes))
        if len(found) < len(nodes):
            found = await self._build_tree(last.seq)
        self.head = Head(
            last.seq, last.hash, Frontier(last.seq, tuple((level, found[(level, i)]) for level, i in nodes))
        )

    async def _build_tree(self, size: int) -> dict[Node, bytes]:
        """The tree of a store made before it had one: every entry's leaf, once (a one-off at its
        first start, like an index build). Nodes that do not cover the entries (a store changed
        behind the service's back) are replaced: the tree always says what the entries are, and
        verification compares it with the signed checkpoints and the entries with the log."""
        if await self._has_tree():
            log.warning("the Merkle tree does not cover the stored entries: rebuilding it from them", size=size)
        async with self.engine.begin() as conn:
            await conn.execute(tree.delete())
        frontier, made = Frontier(), list[tuple[int, int, bytes]]()
        async for chunk in self.stream(StoredEntry, EntryFilter(through_sequence=size), chunk=5000):
            for row in chunk:
                frontier = frontier.append(canonical(log_record(row, with_headers=False), row.headers), made)
            async with self.engine.begin() as conn:
                await self._node_rows.insert(conn, made)
            made.clear()
        return await self.tree_nodes(set(frontier_nodes(size)))

    async def _has_tree(self) -> bool:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(tree.c.idx).limit(1))).first() is not None

    async def close(self) -> None:
        await self.engine.dispose()
        await self._reader.dispose()

    async def positions(self) -> dict[tuple[str, int], int]:
        """Where ingestion goes on: the next offset of every partition seen so far."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(offsets))
            return {(row.topic, row.partition): row.next_offset for row in rows}

    async def write(self, batch: ChainedBatch) -> Head:
        """Stores a batch chained onto the store's head (``chained``) and moves the offsets past
        it, in one transaction; the head moves only once it is committed."""
        if batch.after != self.head:
            raise ValueError(f"the batch is chained onto entry {batch.after.sequence}, the store ends at {self.head}")
        if not batch.rows and not batch.refused:
            return self.head
        async with self.engine.begin() as conn:
            if batch.rows:
                await self._entry_rows.insert(conn, list(map(self._insert_values, batch.rows)))
            await self._save_offsets(conn, batch.next_offsets)
            if batch.access:
                await conn.execute(self._insert_access, [{"task_id": t, "department": d} for t, d in batch.access])
            if batch.refused:
                await conn.execute(refused.insert(), batch.refused)
            if batch.nodes:
                await self._node_rows.insert(conn, batch.nodes)
        self.head = batch.head
        # Whoever waits for news holds the event that is set now; later waiters get a new one.
        self._written.set()
        self._written = asyncio.Event()
        return self.head

    async def written(self, within: float) -> None:
        """Returns when this instance writes entries, or after ``within`` seconds (entries that
        another instance writes to a shared database are seen by looking again then)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._written.wait(), within)

    async def _save_offsets(self, conn: AsyncConnection, next_offsets: dict[tuple[str, int], int]) -> None:
        # One statement for every partition of the batch: each statement is a round trip to
        # the database, and the batch waits for all of them.
        rows = [{"topic": t, "partition": p, "next_offset": n} for (t, p), n in next_offsets.items()]
        await conn.execute(self._upsert_offsets, rows)

    async def snapshot(self) -> Snapshot:
        """The head and the partitions' next offsets as of one moment, read in one statement
        so that both come from the same committed state, on any database."""
        newest = select(func.max(entries.c.seq).label("head")).subquery()
        query = select(newest.c.head, offsets.c.topic, offsets.c.partition, offsets.c.next_offset).select_from(
            newest.outerjoin(offsets, true())
        )
        async with self.engine.connect() as conn:
            rows = list(await conn.execute(query))
        head = (rows[0].head or 0) if rows else 0
        next_offsets = {(row.topic, row.partition): row.next_offset for row in rows if row.topic is not None}
        return Snapshot(Head(head, await self.hash_at(head)), next_offsets)

    @property
    def shared(self) -> bool:
        """PostgreSQL: other instances may read it, and one of them writes it."""
        return self._dialect is postgresql

    def holds_nothing_after(self, sequence: int) -> bool:
        """Known without a query: this instance is the database's only writer and has written
        nothing after ``sequence`` (a follower of the trail then waits without asking)."""
        return not self.shared and self.head.sequence <= sequence

    async def stored_head(self) -> int:
        """The newest sequence in the database, whoever wrote it (``head`` is what this
        instance wrote, and a standby writes nothing)."""
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.max(entries.c.seq)))).scalar() or 0)

    async def newest(self) -> int:
        """The newest sequence stored: known without a query when this instance is the only writer."""
        return self.head.sequence if not self.shared else await self.stored_head()

    async def hash_at(self, sequence: int) -> str:
        """The chain's hash after entry ``sequence`` (GENESIS before the first)."""
        if sequence <= 0:
            return GENESIS
        async with self.engine.connect() as conn:
            found = (await conn.execute(select(entries.c.hash).where(entries.c.seq == sequence))).scalar()
        return found if found is not None else ""

    async def last_offsets(self) -> dict[tuple[str, int], int]:
        """Per partition, the offset of its newest stored record: an entry, or one refused."""
        newest: dict[tuple[str, int], int] = {}
        async with self._reader.connect() as conn:  # a scan of every entry's position
            for table in (entries, refused):
                query = select(table.c.topic, table.c.partition, func.max(table.c.offset).label("last")).group_by(
                    table.c.topic, table.c.partition
                )
                for row in await conn.execute(query):
                    where = (row.topic, row.partition)
                    newest[where] = max(newest.get(where, -1), row.last)
        return newest

    # --- checkpoints ---------------------------------------------------------------------------

    async def add_checkpoint(
        self, sequence: int, head_hash: str, signed_at: datetime, key_id: str, signature: str, root_hash: str, note: str
    ) -> None:
        """Recorded as not yet published: it is marked once it is on the log. On SQLite this
        commit is synced to disk (and with it every entry before it), so a published checkpoint
        never names entries that a power loss could take back."""
        async with self.engine.connect() as conn:
            if self._dialect is sqlite:
                await conn.exec_driver_sql("PRAGMA synchronous=FULL")
                await conn.commit()
            try:
                async with conn.begin():
                    await conn.execute(
                        checkpoints.insert().values(
                            sequence=sequence,
                            head_hash=head_hash,
                            signed_at=iso(signed_at),
                            key_id=key_id,
                            signature=signature,
                            published=False,
                            root_hash=root_hash,
                            note=note,
                        )
                    )
            finally:
                if self._dialect is sqlite:
                    await conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
                    await conn.commit()

    async def mark_published(self, sequence: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(checkpoints).where(checkpoints.c.sequence == sequence).values(published=True))

    async def checkpoints(self, *, unpublished_only: bool = False) -> list[Row[Any]]:
        query = select(checkpoints).order_by(checkpoints.c.sequence)
        if unpublished_only:
            query = query.where(checkpoints.c.published == literal(False))
        async with self.engine.connect() as conn:
            return list(await conn.execute(query))

    # --- the Merkle tree --------------------------------------------------------------------------

    async def tree_nodes(self, wanted: set[Node]) -> dict[Node, bytes]:
        """The stored perfect subtrees asked for (those that exist)."""
        found: dict[Node, bytes] = {}
        keys = sorted(wanted)
        async with self.engine.connect() as conn:
            for start in range(0, len(keys), 500):
                chunk = set(keys[start : start + 500])
                # Two IN lists over the key's two columns, filtered here: the database searches
                # its primary key for each pair (a row-value IN list makes SQLite scan the table)
                # and the statement is compiled once for any number of nodes.
                query = self._select_nodes.params(
                    levels=sorted({level for level, _ in chunk}), indexes=sorted({idx for _, idx in chunk})
                )
                for row in await conn.execute(query):
                    if (row.level, row.idx) in chunk:
                        found[(row.level, row.idx)] = bytes(row.hash)
        return found

    async def root_at(self, size: int) -> bytes | None:
        """The tree's root when it had ``size`` leaves; None when the store does not reach it."""
        nodes = frontier_nodes(size)
        found = await self.tree_nodes(set(nodes))
        return root_from(size, found) if len(found) == len(nodes) else None

    async def leaf(self, index: int) -> bytes | None:
        """Leaf ``index`` (from 0): entry ``index + 1``'s canonical bytes."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(*ENTRY_COLUMNS).where(entries.c.seq == index + 1))).first()
        if row is None:
            return None
        entry = StoredEntry._make(row)
        return canonical(log_record(entry, with_headers=False), entry.headers)

    # --- records refused for their writer's proof -----------------------------------------------

    async def refused_records(self, *, unreported_only: bool = False) -> list[RefusedRecord]:
        query = select(*(refused.c[name] for name in RefusedRecord._fields)).order_by(
            refused.c.topic, refused.c.partition, refused.c.offset
        )
        if unreported_only:
            query = query.where(refused.c.reported == literal(False))
        async with self.engine.connect() as conn:
            return list(map(RefusedRecord._make, await conn.execute(query)))

    async def count_refused(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(refused))).scalar_one())

    async def mark_reported(self, topic: str, partition: int, offset: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(refused)
                .where(refused.c.topic == topic, refused.c.partition == partition, refused.c.offset == offset)
                .values(reported=True)
            )

    # --- verifications -------------------------------------------------------------------------

    async def record_verification(
        self,
        *,
        at: datetime,
        by_user: str,
        by_department: str,
        ok: bool,
        entries: int,
        checkpoints: int,
        against_log: bool,
    ) -> None:
        """Who verified the trail, when, and what they found (shown on the dashboard's trail page)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                verifications.insert().values(
                    verified_at=iso(at),
                    by_user=by_user,
                    by_department=by_department,
                    ok=ok,
                    entries=entries,
                    checkpoints=checkpoints,
                    against_log=against_log,
                )
            )

    async def verifications(self, limit: int) -> list[Row[Any]]:
        """The latest first."""
        query = select(verifications).order_by(verifications.c.id.desc()).limit(limit)
        async with self.engine.connect() as conn:
            return list(await conn.execute(query))

    # --- reading ---------------------------------------------------------------------------------

    async def page(self, shape: type[Shape], where: EntryFilter, limit: int) -> tuple[list[Shape], bool]:
        return await self._page(self.engine, shape, where, limit)

    async def _page(
        self, engine: AsyncEngine, shape: type[Shape], where: EntryFilter, limit: int
    ) -> tuple[list[Shape], bool]:
        statement, values = page_query(shape, where)
        async with engine.connect() as conn:
            rows = list(map(shape._make, await conn.execute(statement, {**values, "limit": limit + 1})))
        return rows[:limit], len(rows) > limit

    async def stream(
        self, shape: type[Shape], where: EntryFilter = EntryFilter(), chunk: int = 2000
    ) -> AsyncIterator[list[Shape]]:
        """Every matching entry in log order, ``chunk`` rows at a time (constant memory: the
        next chunk is read as soon as the caller waits, on PostgreSQL while it handles this one).

        On SQLite a chunk is read on the event loop's thread, like a page: read in a thread of
        its own an exported entry cost 12-19 µs against 8-10, the interpreter handed back and
        forth between the two threads for each row (docs/performance.md)."""
        reading = asyncio.ensure_future(self._page(self.engine, shape, where, chunk))
        try:
            while True:
                rows, more = await reading
                if more:
                    after = replace(where, after_sequence=rows[-1].seq)
                    reading = asyncio.ensure_future(self._page(self.engine, shape, after, chunk))
                if rows:
                    yield rows
                if not more:
                    return
        finally:
            reading.cancel()

    async def count(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(entries))).scalar_one())

    async def partition_entries(
        self, topic: str, partition: int, chunk: int = 5000, through_sequence: int | None = None
    ) -> AsyncIterator[list[StoredEntry]]:
        """One partition's entries in offset order (those up to ``through_sequence``)."""
        query = select(*ENTRY_COLUMNS).where(entries.c.topic == topic, entries.c.partition == partition)
        if through_sequence is not None:
            query = query.where(entries.c.seq <= through_sequence)
        after = -1
        while True:
            async with self._reader.connect() as conn:
                rows = list(
                    map(
                        StoredEntry._make,
                        await conn.execute(
                            query.where(entries.c.offset > after).order_by(entries.c.offset).limit(chunk)
                        ),
                    )
                )
            if not rows:
                return
            yield rows
            after = rows[-1].offset

    async def following(self, topic: str, partition: int, offset: int, limit: int) -> list[StoredEntry]:
        """The entries of one partition from ``offset`` on, in offset order (at most ``limit``)."""
        query = (
            select(*ENTRY_COLUMNS)
            .where(entries.c.topic == topic, entries.c.partition == partition, entries.c.offset >= offset)
            .order_by(entries.c.offset)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return list(map(StoredEntry._make, await conn.execute(query)))

    async def stored_partitions(self) -> list[tuple[str, int]]:
        async with self._reader.connect() as conn:  # a scan of every entry's position
            rows = await conn.execute(select(entries.c.topic, entries.c.partition).distinct())
            return sorted((row.topic, row.partition) for row in rows)


def _create_private_file(path: Path) -> None:
    """The database readable by its owner only, from the first byte: SQLite gives its WAL and
    shared-memory files the database file's mode."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


ROWS_PER_STATEMENT = 100
"""Rows one SQLite INSERT takes. Python's sqlite3 lets go of the interpreter for every statement
it steps, and an ``executemany`` steps once a row: while another thread computes (the next
batch's chain), each row waited up to the interpreter's switch interval for it back
(bench.audit_store: 745 µs a row, against 13 alone). A hundred rows a statement: 27 µs a row with
the thread busy, 12.6 alone."""


class _RowsInserter:
    """Rows of one table in the driver's own terms, from the one-row statement the dialect compiled
    (Core's per-row parameter processing cost three times the driver's executemany). With
    ``per_statement`` above one (SQLite), statements of that many rows' placeholders; with one
    (PostgreSQL, whose driver sends the rows together), the one-row statement for every row."""

    def __init__(self, one_row: str, per_statement: int) -> None:
        self._one_row, self._per_statement = one_row, per_statement
        self._head, self._row = one_row.split(" VALUES ", 1)
        self._statements: dict[int, str] = {}

    async def insert(self, conn: AsyncConnection, rows: list[tuple[Any, ...]]) -> None:
        if self._per_statement == 1:
            await conn.exec_driver_sql(self._one_row, rows)
            return
        for start in range(0, len(rows), self._per_statement):
            chunk = rows[start : start + self._per_statement]
            await conn.exec_driver_sql(self._statement(len(chunk)), tuple(v for row in chunk for v in row))

    def _statement(self, rows: int) -> str:
        if (statement := self._statements.get(rows)) is None:
            statement = self._statements[rows] = f"{self._head} VALUES {', '.join([self._row] * rows)}"
        return statement
