"""The audit service killed (SIGKILL) in the middle of ingesting 50,000 events and restarted:
every event is in the store exactly once and the chain verifies."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import httpx

from shared.contract.catalog import TaskProgressReported
from shared.contract.codes import Department
from shared.contract.envelope import new_event
from shared.kafka.producer import EventProducer
from shared.provenance.keys import SigningKey
from shared.settings import KafkaSettings
from tests.conftest import NAO, ServiceFactory, eventually

EVENTS = 50_000


async def test_sigkill_mid_ingest_loses_and_duplicates_nothing(
    service_factory: ServiceFactory, kafka_settings: KafkaSettings, tasks_key: SigningKey
) -> None:
    actor = f"u-load-{uuid.uuid4().hex[:8]}"
    async with EventProducer(kafka_settings, client_id="test-audit-crash", signing_key=tasks_key) as producer:
        await producer.publish_all(
            new_event(
                TaskProgressReported(task_id=f"load-{n % 500}", percent=n % 101),
                actor=actor,
                actordept=Department.JILIN,
            )
            for n in range(EVENTS)
        )
    audit = service_factory("audit", POLICYTRACK_AUDIT_BATCH_SIZE="500")
    db = Path(audit.env["POLICYTRACK_DATA_DIR"]) / "audit" / "audit.db"

    def stored() -> int:
        if not db.exists():
            return 0
        with sqlite3.connect(db) as connection:
            try:
                count: int = connection.execute(
                    "select count(*) from audit_entries where actor = ?", (actor,)
                ).fetchone()[0]
                return count
            except sqlite3.OperationalError:
                return 0

    audit.start(wait=False)

    async def midway() -> bool:
        return 0 < stored() < EVENTS

    await eventually(midway, timeout=120, what="ingestion under way")
    audit.kill()
    killed_at = stored()
    assert 0 < killed_at < EVENTS, "the kill must land in the middle of ingestion"

    audit.start(wait=False)
    audit.wait_ready(timeout=180)

    async def all_in() -> bool:
        return stored() >= EVENTS

    await eventually(all_in, timeout=180, what="every event ingested after the restart")
    with sqlite3.connect(db) as connection:
        total, distinct = connection.execute(
            "select count(*), count(distinct event_id) from audit_entries where actor = ?", (actor,)
        ).fetchone()
        positions, distinct_positions = connection.execute(
            "select count(*), count(distinct topic || '/' || partition || '/' || offset) from audit_entries"
        ).fetchone()
    assert (total, distinct) == (EVENTS, EVENTS)
    assert positions == distinct_positions
    async with httpx.AsyncClient(base_url=audit.url, timeout=300) as client:
        result = (await client.get("/v1/audit/verify", headers=NAO)).json()
    assert result["ok"] is True, result
