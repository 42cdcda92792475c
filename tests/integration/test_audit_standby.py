"""Two audit instances on one PostgreSQL store: one writes the chain, the other stands by and
serves reads; when the writer is killed the standby takes the lease and goes on from where the
chain stands, with nothing lost or written twice (the trail still verifies against the log)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from policytrack.processes import ServiceProcess
from tests.conftest import JILIN, NAO, ServiceFactory, caught_up, eventually, plan_and_task, readiness


@pytest.fixture
def tasks(service_factory: ServiceFactory) -> ServiceProcess:
    return service_factory("tasks").start()


@pytest.fixture
def audit_pair(
    service_factory: ServiceFactory, postgres_dsn: str, tmp_path: Path
) -> tuple[ServiceProcess, ServiceProcess]:
    """Same store, same chain, same signing key: two instances of one audit service."""
    shared = {
        "POLICYTRACK_AUDIT_DSN": postgres_dsn,
        "POLICYTRACK_AUDIT_CHAIN_ID": f"chain-{uuid.uuid4().hex[:8]}",
        "POLICYTRACK_AUDIT_SIGNING_KEY_PATH": str(tmp_path / "signing-key.pem"),
        "POLICYTRACK_AUDIT_LEASE_CHECK_SECONDS": "0.2",
        "POLICYTRACK_AUDIT_CHECKPOINT_INTERVAL_SECONDS": "1",
    }
    first = service_factory("audit", **shared).start()
    return first, service_factory("audit", **shared)


async def role_of(service: ServiceProcess, role: str) -> dict[str, Any] | None:
    ready = await readiness(service)
    return ready if ready["role"] == role else None


async def progress(tasks: ServiceProcess, task_id: str, percents: range) -> None:
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        for percent in percents:
            reported = await client.post(f"/v1/tasks/{task_id}/progress", headers=JILIN, json={"percent": percent})
            assert reported.status_code == 200, reported.text


async def test_one_writes_the_other_stands_by_and_takes_over_when_the_writer_dies(
    tasks: ServiceProcess, audit_pair: tuple[ServiceProcess, ServiceProcess]
) -> None:
    writer, standby = audit_pair
    assert (await readiness(writer))["role"] == "writer"
    standby.start()
    ready = await readiness(standby)
    assert ready["role"] == "standby" and ready["ready"] is True, ready

    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        task_id = await plan_and_task(client)
    await progress(tasks, task_id, range(1, 11))
    entries = (await caught_up(writer))["entries"]
    async with httpx.AsyncClient(timeout=30) as client:
        seen = [
            (await client.get(f"{s.url}/v1/audit/events", headers=NAO, params={"task_id": task_id})).json()["items"]
            for s in (writer, standby)
        ]
    assert seen[0] == seen[1] and len(seen[0]) >= 12, "the standby serves the same trail"
    assert (await readiness(standby))["entries"] >= entries, "read from the shared store, not its own"

    writer.kill()
    await eventually(lambda: role_of(standby, "writer"), timeout=30, what="the standby taking the lease")
    await progress(tasks, task_id, range(11, 21))
    after = await caught_up(standby)
    assert after["entries"] > entries

    writer.start()
    assert (await readiness(writer))["role"] == "standby", "the old writer comes back as the standby"
    async with httpx.AsyncClient(base_url=standby.url, timeout=300) as client:
        verified = (await client.get("/v1/audit/verify", headers=NAO)).json()
    assert verified["ok"] is True, verified
    assert verified["entries"] >= after["entries"], "one chain, every record of the log once"
