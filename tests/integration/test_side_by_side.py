"""Two checkouts test on one machine at once (or one test runs beside the suite): a pytest
session that starts sets pytest's own folder back to 0700. What a running session started for
other users (the PostgreSQL server runs as ``postgres``) must not depend on passing through it."""

from __future__ import annotations

import getpass
import tempfile
from pathlib import Path

import asyncpg


async def test_the_postgres_server_outlives_another_pytest_session_starting(postgres_dsn: str) -> None:
    pytests_folder = Path(tempfile.gettempdir()) / f"pytest-of-{getpass.getuser()}"
    pytests_folder.chmod(pytests_folder.stat().st_mode & ~0o077)  # what pytest does as a session starts
    connection = await asyncpg.connect(postgres_dsn.replace("+asyncpg", ""))
    try:
        await connection.execute("CHECKPOINT")  # the server opens its own files again
        assert await connection.fetchval("select count(*) from pg_class") > 0
    finally:
        await connection.close()
