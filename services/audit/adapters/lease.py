"""Who writes the chain: one instance at a time, the others standing by and serving reads.

On SQLite the store is a file of this instance's own, so it is always the writer. On
PostgreSQL the writer holds a session advisory lock keyed by the chain id, on a connection of
its own: when the writer dies its session ends, PostgreSQL releases the lock, and a standby
takes it. The lease is for liveness, not for safety: the store's keys (one entry per
sequence, one per log position) refuse a second writer's entries whatever the lease says.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.logging import get_logger

log = get_logger(__name__)


class WriterLease(Protocol):
    async def try_acquire(self) -> bool:
        """True when this instance holds the lease (taken now or already held)."""

    async def still_held(self) -> bool: ...

    async def release(self) -> None: ...


class SoleWriter:
    """SQLite: nobody else can write this file."""

    async def try_acquire(self) -> bool:
        return True

    async def still_held(self) -> bool:
        return True

    async def release(self) -> None:
        pass


def lock_key(chain_id: str) -> int:
    """The chain id as the signed 64-bit key PostgreSQL's advisory locks take."""
    return int.from_bytes(hashlib.sha256(f"policytrack-audit:{chain_id}".encode()).digest()[:8], "big", signed=True)


class AdvisoryLease:
    """PostgreSQL: ``pg_try_advisory_lock`` on a connection kept open for as long as it is held."""

    def __init__(self, engine: AsyncEngine, chain_id: str) -> None:
        self._engine = engine
        self._key = lock_key(chain_id)
        self._connection: AsyncConnection | None = None
        self.held = False

    async def try_acquire(self) -> bool:
        if self.held:
            return await self.still_held()
        try:
            if self._connection is None:
                self._connection = await self._engine.connect()
            result = await self._connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key})
            self.held = bool(result.scalar())
            await self._connection.commit()  # the lock is the session's: it outlives the transaction
        except (SQLAlchemyError, OSError) as error:
            log.warning("could not ask for the writer's lease", error=repr(error))
            await self._drop()
        return self.held

    async def still_held(self) -> bool:
        """Asked on the lease's own session: a session that is gone holds nothing."""
        if self._connection is None or not self.held:
            return False
        # A 64-bit key shows in pg_locks as its high and low 32 bits.
        query = text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()"
            " AND classid::bigint = :high AND objid::bigint = :low AND objsubid = 1"
        )
        halves = {"high": (self._key >> 32) & 0xFFFFFFFF, "low": self._key & 0xFFFFFFFF}
        try:
            held = bool((await self._connection.execute(query, halves)).scalar())
            await self._connection.commit()
        except (SQLAlchemyError, OSError) as error:
            log.warning("lost the writer's lease: its session failed", error=repr(error))
            held = False
        if not held:
            await self._drop()
        return held

    async def release(self) -> None:
        if self._connection is not None and self.held:
            try:
                await self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
                await self._connection.commit()
            except (SQLAlchemyError, OSError) as error:
                log.warning("could not release the writer's lease; it ends with the session", error=repr(error))
        await self._drop()

    async def _drop(self) -> None:
        self.held = False
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.close()
            except (SQLAlchemyError, OSError):
                log.warning("the lease's connection did not close cleanly")
