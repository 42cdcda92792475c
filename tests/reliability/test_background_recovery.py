"""Background work that fails says so on /readyz and recovers without a restart; a checkpoint
whose publication did not happen is published on the next round."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from policytrack.processes import ServiceProcess
from shared.contract.catalog import TaskProgressReported, TreeCheckpoint
from shared.contract.codec import decode_record
from shared.contract.codes import Department
from shared.contract.envelope import CloudEvent, new_event
from shared.contract.topics import AUDIT
from shared.kafka.producer import EventProducer
from shared.provenance.keys import SigningKey
from shared.settings import KafkaSettings
from tests.conftest import NAO, ServiceFactory, caught_up, end_offsets, eventually, read_from, resolved


async def publish_progress(kafka: KafkaSettings, key: SigningKey, count: int, actor: str) -> None:
    async with EventProducer(kafka, client_id="test-recovery", signing_key=key) as producer:
        await producer.publish_all(
            new_event(TaskProgressReported(task_id=f"r-{n}", percent=n % 101), actor=actor, actordept=Department.JILIN)
            for n in range(count)
        )


async def test_a_failing_store_is_reported_and_ingestion_recovers(
    service_factory: ServiceFactory, postgres_dsn: str, kafka_settings: KafkaSettings, tasks_key: SigningKey
) -> None:
    audit: ServiceProcess = service_factory("audit", POLICYTRACK_AUDIT_DSN=postgres_dsn).start(timeout=120)
    await publish_progress(kafka_settings, tasks_key, 10, "u-before")
    await caught_up(audit, timeout=60)
    database = await asyncpg.connect(postgres_dsn.replace("+asyncpg", ""))
    try:
        await database.execute("alter table audit_entries rename to audit_entries_away")
        await publish_progress(kafka_settings, tasks_key, 10, "u-during")

        async def failing() -> dict[str, Any] | None:
            ready = audit.readiness()
            return ready if not ready["background"]["ingest"]["ok"] else None

        ready = await eventually(failing, timeout=60, what="ingestion reported as failing")
        assert ready["ready"] is False and "audit_entries" in ready["background"]["ingest"]["reason"]
        async with httpx.AsyncClient(base_url=audit.url) as client:
            assert (await client.get("/readyz")).status_code == 503
        await database.execute("alter table audit_entries_away rename to audit_entries")
    finally:
        await database.close()

    await eventually(lambda: resolved(audit.readiness()["ready"] is True), timeout=90, what="recovered")
    async with httpx.AsyncClient(base_url=audit.url, timeout=120) as client:
        during = (await client.get("/v1/audit/events", headers=NAO, params={"actor": "u-during"})).json()["items"]
        assert len(during) == 10, "every record that arrived while the store failed was ingested once"
        assert (await client.get("/v1/audit/verify", headers=NAO)).json()["ok"] is True


async def test_a_checkpoint_recorded_but_not_published_is_published_next(
    service_factory: ServiceFactory, kafka_settings: KafkaSettings, tasks_key: SigningKey
) -> None:
    audit: ServiceProcess = service_factory("audit", POLICYTRACK_AUDIT_CHECKPOINT_INTERVAL_SECONDS="1")
    audit.start()
    await publish_progress(kafka_settings, tasks_key, 5, "u-unpublished")
    await caught_up(audit, timeout=60)
    # The checkpoint's own record joins the trail after it, so the goal is a checkpoint that
    # covers the records written here, not the trail's size.
    async with httpx.AsyncClient(base_url=audit.url, timeout=30) as client:
        mine = (await client.get("/v1/audit/events", headers=NAO, params={"actor": "u-unpublished"})).json()["items"]
    head = max(entry["seq"] for entry in mine)

    async def signed() -> list[Any] | None:
        async with httpx.AsyncClient(base_url=audit.url, timeout=30) as client:
            rows = (await client.get("/v1/audit/checkpoints", headers=NAO)).json()["checkpoints"]
        return rows if rows and rows[-1]["sequence"] >= head else None

    await eventually(signed, timeout=60, what="a checkpoint of the whole trail")
    audit.kill()
    # The state a crash leaves between recording a checkpoint and publishing it.
    database = Path(audit.env["POLICYTRACK_DATA_DIR"]) / "audit" / "audit.db"
    with sqlite3.connect(database) as db:
        (sequence,) = db.execute("select max(sequence) from audit_checkpoints").fetchone()
        db.execute("update audit_checkpoints set published = 0 where sequence = ?", (sequence,))
    starts = await end_offsets(kafka_settings, AUDIT)
    audit.start()

    def published(records: list[Any]) -> bool:
        return any(
            isinstance(e := decode_record(r), CloudEvent)
            and isinstance(e.data, TreeCheckpoint)
            and e.data.chain == audit.env["POLICYTRACK_AUDIT_CHAIN_ID"]
            and e.data.size == sequence
            for r in records
        )

    assert published(await read_from(kafka_settings, starts, until=published, timeout=60))
    with sqlite3.connect(database) as db:
        assert db.execute("select published from audit_checkpoints where sequence = ?", (sequence,)).fetchone() == (1,)
