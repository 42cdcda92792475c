"""The audit store's schema comes from its Alembic migrations, and they make exactly the schema
the code declares: on a new database, and on a store made before the migrations (its missing
columns added, its old indexes replaced, its entries kept). PostgreSQL: tests/integration/
test_audit_migrations.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from services.audit.adapters.schema import FILTERED, metadata
from services.audit.adapters.store import AuditStore


def differences(connection: Any) -> list[Any]:
    """What Alembic finds between the database and the tables the code declares."""
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


def revision(connection: Any) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def opened(url: str) -> tuple[list[Any], str | None, set[str]]:
    store = AuditStore(url)
    await store.open()
    try:
        async with store.engine.connect() as conn:
            found = await conn.run_sync(differences)
            at = await conn.run_sync(revision)
            indexes = await conn.run_sync(
                lambda c: {str(i["name"]) for i in sa.inspect(c).get_indexes("audit_entries")}
            )
    finally:
        await store.close()
    return found, at, indexes


async def test_a_new_store_is_made_by_the_migrations_as_the_code_declares_it(tmp_path: Path) -> None:
    found, at, indexes = await opened(f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")
    assert found == [] and at == "0001"
    assert {f"ix_audit_entries_{name}_seq" for name in FILTERED} <= indexes


def made_before_the_migrations(path: Path) -> None:
    """A store as the service made it before its checkpoints were marked on publication, before
    the tree's root, and with the filter indexes on one column each; holding one checkpoint."""
    engine = sa.create_engine(f"sqlite:///{path}")
    old = sa.MetaData()
    for table in metadata.tables.values():
        columns = [c._copy() for c in table.columns if (table.name, c.name) not in OLD_MISSING]
        unique = [
            sa.UniqueConstraint(*u.columns.keys(), name=u.name)
            for u in table.constraints
            if isinstance(u, sa.UniqueConstraint)
        ]
        sa.Table(table.name, old, *columns, *unique)
    with engine.begin() as conn:
        old.create_all(conn)
        for name in FILTERED:
            conn.execute(sa.text(f"CREATE INDEX ix_audit_entries_{name} ON audit_entries ({name})"))
        conn.execute(
            sa.text(
                "INSERT INTO audit_checkpoints (sequence, head_hash, signed_at, key_id, signature)"
                " VALUES (7, 'h', '2026-01-01T00:00:00Z', 'k', 's')"
            )
        )
    engine.dispose()


OLD_MISSING = {("audit_checkpoints", "published"), ("audit_checkpoints", "root_hash"), ("audit_checkpoints", "note")}


async def test_a_store_made_before_the_migrations_is_brought_to_them_and_keeps_what_it_holds(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    made_before_the_migrations(path)
    found, at, indexes = await opened(f"sqlite+aiosqlite:///{path}")
    assert found == [] and at == "0001"
    assert not {f"ix_audit_entries_{name}" for name in FILTERED} & indexes, "the single-column indexes are gone"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT sequence, published, root_hash FROM audit_checkpoints")).all()
    engine.dispose()
    assert [tuple(row) for row in kept] == [(7, 0, None)], "kept, and to be published once more"


async def test_opening_a_store_again_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"
    first = await opened(url)
    assert await opened(url) == first
