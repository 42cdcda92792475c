"""Verification on a live system: over a trail of more than 100,000 entries, while commands
keep arriving at a steady rate, every one of four verifications in a row says the trail is
intact (it used to call every entry ingested during the walk "not on the log")."""

from __future__ import annotations

import asyncio
import time

import httpx

from shared.contract.catalog import TaskProgressReported
from shared.contract.codes import Department
from shared.contract.envelope import new_event
from shared.kafka.producer import EventProducer
from shared.provenance.keys import SigningKey
from tests.conftest import JILIN, NAO, Broker, ServiceFactory, eventually, tasks_of_a_new_plan

HISTORY = 100_000
RATE = 250  # commands per second, from 16 concurrent writers
WRITERS = 16
VERIFICATIONS = 4


async def test_verifications_under_steady_writes_all_say_intact(
    spare_broker: Broker, service_factory: ServiceFactory, tasks_key: SigningKey
) -> None:
    kafka = spare_broker.settings
    on_spare = spare_broker.service_env()
    async with EventProducer(kafka, client_id="test-history", signing_key=tasks_key) as producer:
        await producer.publish_all(
            new_event(
                TaskProgressReported(task_id=f"history-{n % 1000}", percent=n % 101),
                actor="u-history",
                actordept=Department.JILIN,
            )
            for n in range(HISTORY)
        )
    tasks = service_factory("tasks", **on_spare).start(timeout=120)
    audit = service_factory("audit", POLICYTRACK_AUDIT_CHECKPOINT_INTERVAL_SECONDS="2", **on_spare).start(timeout=180)
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        task_ids = await tasks_of_a_new_plan(client, WRITERS)
    async with httpx.AsyncClient(base_url=audit.url, timeout=30) as client:

        async def caught_up() -> int | None:
            ready = (await client.get("/readyz")).json()
            return ready["entries"] if ready.get("lag") == 0 and ready["entries"] >= HISTORY else None

        await eventually(caught_up, timeout=240, what="the history ingested")

    acknowledged = 0
    stop = asyncio.Event()

    async def writer(task_id: str) -> None:
        nonlocal acknowledged
        async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
            percent, period = 0, WRITERS / RATE
            next_at = time.monotonic()
            while not stop.is_set():
                percent = percent % 100 + 1
                note = "" if percent > 1 else "a new cycle"
                response = await client.post(
                    f"/v1/tasks/{task_id}/progress", headers=JILIN, json={"percent": percent, "note": note}
                )
                assert response.status_code == 200, response.text
                acknowledged += 1
                next_at += period
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    writers = [asyncio.create_task(writer(task_id)) for task_id in task_ids]
    results = []
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(base_url=audit.url, timeout=300) as client:
            for _ in range(VERIFICATIONS):
                before = (await client.get("/readyz")).json()["entries"]
                results.append((await client.get("/v1/audit/verify", headers=NAO)).json())
                results[-1]["grew_by"] = (await client.get("/readyz")).json()["entries"] - before
    finally:
        stop.set()
        await asyncio.gather(*writers)
    elapsed = time.monotonic() - started
    print(
        f"\n{acknowledged:,} commands acknowledged in {elapsed:.1f}s ({acknowledged / elapsed:,.0f}/s) while "
        f"verifying; entries covered: {[r['entries'] for r in results]}"
    )
    for result in results:
        assert result["ok"] is True, result["divergence"]
        assert result["entries"] > HISTORY
    assert all(r["grew_by"] > 0 for r in results), "the trail grew during every verification: it was live"
    assert results[-1]["entries"] > results[0]["entries"]
