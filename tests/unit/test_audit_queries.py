"""A page of the trail filtered by type, task, actor or department is a range of one index in
log order: no sort and no scan of the whole trail, however long it grows (SQLite's own plans)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy.dialects import sqlite

from services.audit.adapters.schema import ENTRY_COLUMNS, StoredEntry, TrailEntry, entries
from services.audit.adapters.store import AuditStore, EntryFilter, page_query

FILTERS = {
    "type": EntryFilter(event_types=("org.policytrack.task.progress_reported.v1",), after_sequence=5),
    "task": EntryFilter(task_id="task-1", after_sequence=5),
    "actor": EntryFilter(actor="u-jilin", after_sequence=5),
    "department": EntryFilter(department="JILIN", after_sequence=5),
    "everything": EntryFilter(after_sequence=5),
}


async def plan_of(store: AuditStore, where: EntryFilter) -> list[str]:
    statement, values = page_query(TrailEntry, where)
    query = statement.params(values, limit=101)
    sql = str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    async with store.engine.connect() as connection:
        return [str(row._mapping["detail"]) for row in await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]


@pytest.mark.parametrize("name", list(FILTERS))
async def test_a_filtered_page_reads_one_index_range_in_log_order(tmp_path: Path, name: str) -> None:
    store = AuditStore(f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")
    await store.open()
    try:
        plan = await plan_of(store, FILTERS[name])
    finally:
        await store.close()
    assert len(plan) == 1 and plan[0].startswith("SEARCH audit_entries USING"), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


async def test_a_store_made_with_single_column_indexes_gets_the_pairs(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    store = AuditStore(f"sqlite+aiosqlite:///{path}")
    await store.open()
    await store.close()
    with closing(sqlite3.connect(path)) as db, db:  # as a store made before its migrations
        db.execute("DROP INDEX ix_audit_entries_event_type_seq")
        db.execute("CREATE INDEX ix_audit_entries_event_type ON audit_entries (event_type)")
        db.execute("DROP TABLE alembic_version")
    reopened = AuditStore(f"sqlite+aiosqlite:///{path}")
    await reopened.open()
    try:
        plan = await plan_of(reopened, FILTERS["type"])
    finally:
        await reopened.close()
    assert plan == ["SEARCH audit_entries USING INDEX ix_audit_entries_event_type_seq (event_type=? AND seq>?)"]


def test_a_stored_entry_names_every_column_of_the_table_in_its_order() -> None:
    # Entries are read positionally into StoredEntry: a column added to the table and not to
    # the tuple (or the other way round) would shift every field after it.
    assert [column.name for column in ENTRY_COLUMNS] == list(StoredEntry._fields)
    assert {column.name for column in entries.c} == set(StoredEntry._fields)


async def test_a_proofs_nodes_are_searched_by_key_not_scanned(tmp_path: Path) -> None:
    """The nodes of a proof come from the tree's primary key: a row-value IN list made SQLite scan
    every node, 10 ms a proof at 20,000 entries and growing with the trail (bench/transparency.py)."""
    store = AuditStore(f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")
    await store.open()
    try:
        query = store._select_nodes.params(levels=[0, 3], indexes=[5, 17])
        sql = str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
        async with store.engine.connect() as connection:
            plan = [
                str(row._mapping["detail"]) for row in await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)
            ]
    finally:
        await store.close()
    assert plan and all(not step.startswith("SCAN audit_tree") for step in plan), plan
    assert any(step.startswith("SEARCH audit_tree USING") for step in plan), plan
