"""The tasks service's transactional writer through repeated broker restarts under load. A
restart in the middle of a transaction used to kill aiokafka's sender (aio-libs/aiokafka#1151)
and leave every later append waiting forever; now the writer replaces its producer, learns
from the log whether the interrupted batch is on it, and writes again. Nothing acknowledged is
lost and nothing is written twice."""

from __future__ import annotations

import asyncio
import json

import httpx

from tests.conftest import JILIN, SC, Broker, ServiceFactory, eventually
from tests.load import Load, keys_on_log

RESTARTS = 4
WRITERS = {"JILIN": "implementer", "MIIT": "supporter", "CHANGCHUN": "implementer", "MOFCOM": "supporter"}


async def tasks_of_each_writer(url: str) -> dict[str, list[str]]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        plan = (await client.post("/v1/plans", headers=SC, json={"title": "Plan"})).json()["id"]
        owned: dict[str, list[str]] = {department: [] for department in WRITERS}
        for lead, supporting in (("JILIN", "MIIT"), ("CHANGCHUN", "MOFCOM")):
            body = {
                "plan_id": plan,
                "title": f"{lead} task",
                "field": "trade",
                "lead_department": lead,
                "supporting_departments": [supporting],
                "due": "2030-01-01T00:00:00Z",
            }
            created = await client.post("/v1/tasks", headers=JILIN, json=body)
            assert created.status_code == 201, created.text
            owned[lead].append(created.json()["id"])
            owned[supporting].append(created.json()["id"])
    return owned


async def test_writes_resume_after_every_broker_restart_and_none_is_lost_or_doubled(
    spare_broker: Broker, service_factory: ServiceFactory
) -> None:
    kafka = spare_broker.settings
    tasks = service_factory("tasks", **spare_broker.service_env()).start()
    load = Load(tasks.url, await tasks_of_each_writer(tasks.url), prefix="restarts")
    writers = [asyncio.create_task(load.writer(d, r)) for d, r in WRITERS.items()]
    try:
        for restart in range(RESTARTS):
            load.mark()
            await eventually(lambda: load.grown_by(40), what="the load running")
            await asyncio.to_thread(spare_broker.script, "restart")
            load.mark()
            await eventually(lambda: load.grown_by(40), timeout=120, what=f"writes after broker restart {restart + 1}")
    finally:
        load.stop.set()
        await asyncio.wait_for(asyncio.gather(*writers, return_exceptions=True), timeout=150)
    on_log = await keys_on_log(kafka, "restarts")
    assert not load.acknowledged - set(on_log), "acknowledged commands are not on the log"
    assert not {key for key, n in on_log.items() if n > 1}, "commands are on the log more than once"
    client_lines = lines_of_client_library(tasks.log_path.read_text(errors="replace"))
    assert client_lines < 1000, f"{client_lines:,} lines of aiokafka's reconnect attempts"
    print(
        f"{len(load.acknowledged):,} acknowledged through {RESTARTS} restarts, {load.retries:,} retries; "
        f"{client_lines:,} lines from aiokafka"
    )


def lines_of_client_library(log: str) -> int:
    """aiokafka logs each attempt to reach a broker that is down: in one CI run, 51,818 lines in
    under three minutes of these restarts (8.8 MB). Sampled, a kind of line is logged at most ten
    times a minute."""
    return sum(
        1 for line in log.splitlines() if line.startswith("{") and json.loads(line)["logger"].startswith("aiokafka")
    )
