"""The audit store's schema, changed only by Alembic migrations (``versions/``): a store is
brought to the newest revision when the audit service opens it. A new change of schema is a
new revision: ``.venv/bin/alembic -c services/audit/adapters/migrations/alembic.ini revision -m "..."``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import text

HERE = Path(__file__).parent
MIGRATION_LOCK = 0x706F6C6963797472  # "policytr": the advisory lock audit instances migrate under


def upgrade(connection: Any) -> None:
    """Brings the database behind ``connection`` (a synchronous SQLAlchemy connection, in a
    transaction that the caller commits) to the newest revision."""
    config = Config(HERE / "alembic.ini")
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    if connection.dialect.name == "postgresql":
        # Instances sharing one database may start at once: one migrates, the others then find
        # it done (released when the transaction ends).
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    command.upgrade(config, "head")
