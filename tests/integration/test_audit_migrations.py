"""On PostgreSQL too, the audit store's migrations make exactly the schema the code declares,
and a second start changes nothing (SQLite: tests/unit/test_audit_migrations.py)."""

from __future__ import annotations

import asyncio

from tests.unit.test_audit_migrations import opened


async def test_the_migrations_make_the_declared_schema_on_postgresql(postgres_dsn: str) -> None:
    found, at, indexes = await opened(postgres_dsn)
    assert found == [] and at == "0001"
    assert "ix_audit_entries_task_id_seq" in indexes
    assert await opened(postgres_dsn) == (found, at, indexes)


async def test_instances_starting_at_once_on_one_database_both_open_it(postgres_dsn: str) -> None:
    """Audit instances that share a database (a standby, blue-green) may start together: one
    migrates, the other waits for it and finds the schema made."""
    async with asyncio.timeout(60):  # without a lock between them, the two hung on each other
        first, second = await asyncio.gather(opened(postgres_dsn), opened(postgres_dsn))
    assert first == second and first[:2] == ([], "0001")
