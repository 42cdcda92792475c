"""Contract evolution against the real broker: a version-1 ``plan.approved`` record, kept as a
fixture as the tasks service wrote it, is put on the log beside a version-2 one; the tasks
service reads it as version 2, the audit trail keeps it as version 1 and finds both when asked
for ``plan.approved``, and its replay of the plan holds it."""

from __future__ import annotations

import httpx
import orjson

from shared.contract.topics import EVENTS
from shared.kafka.producer import EventProducer
from shared.provenance.keys import SigningKey
from shared.settings import KafkaSettings
from tests.conftest import NAO, SC, ServiceFactory, caught_up, eventually
from tests.unit.test_upcasting import v1_record

V1 = "org.policytrack.plan.approved.v1"
V2 = "org.policytrack.plan.approved.v2"


async def test_a_version_1_record_is_read_as_version_2_by_the_services_and_kept_as_written_by_the_trail(
    service_factory: ServiceFactory, kafka_settings: KafkaSettings, tasks_key: SigningKey
) -> None:
    key, value, headers = v1_record()
    old_plan = key.decode()
    async with EventProducer(kafka_settings, client_id="test-v1-writer", signing_key=tasks_key) as producer:
        partition = await producer.partition_of(EVENTS, key)
        await producer.send(EVENTS, value, key=key, headers=list(headers), partition=partition)

    tasks = service_factory("tasks").start()
    audit = service_factory("audit").start()
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        read = await client.get(f"/v1/plans/{old_plan}", headers=SC)
        assert read.status_code == 200, read.text
        assert read.json()["title"] == "中韩（长春）国际合作示范区总体方案" and read.json()["document_number"] is None
        made = await client.post(
            "/v1/plans", headers=SC, json={"title": "Second plan", "document_number": "国函〔2026〕1号"}
        )
        assert made.status_code == 201, made.text
        new_plan = made.json()["id"]
        assert (await client.get(f"/v1/plans/{new_plan}", headers=SC)).json()["document_number"] == "国函〔2026〕1号"

    await caught_up(audit)
    async with httpx.AsyncClient(base_url=audit.url, timeout=60) as client:

        async def both_listed() -> dict[str, str] | None:
            page = (
                await client.get("/v1/audit/events", headers=NAO, params={"type": "plan.approved", "limit": 1000})
            ).json()
            found = {item["event"]["subject"]: item["event"]["type"] for item in page["items"]}
            return found if {old_plan, new_plan} <= set(found) else None

        found = await eventually(both_listed, timeout=30, what="both versions in the trail")
        assert found[old_plan] == V1 and found[new_plan] == V2
        only_v2 = (await client.get("/v1/audit/events", headers=NAO, params={"type": V2, "limit": 1000})).json()
        assert old_plan not in {item["event"]["subject"] for item in only_v2["items"]}
        as_written = (await client.get("/v1/audit/events", headers=NAO, params={"type": V1})).json()["items"]
        [entry] = [item for item in as_written if item["event"]["subject"] == old_plan]
        assert entry["event"]["data"] == orjson.loads(value), "the trail keeps the record's data as it was written"
