"""The audit service against the real broker: the trail, its proofs, replay and export."""

from __future__ import annotations

import asyncio
import csv
import io
import signal
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import pytest

from policytrack.processes import ServiceProcess
from shared.cursor import encode_cursor
from tests.conftest import JILIN, MEE, MOST, NAO, ServiceFactory, caught_up, plan_and_task

DUE = "2027-06-30T00:00:00Z"


def database(audit: ServiceProcess) -> Path:
    return Path(audit.env["POLICYTRACK_DATA_DIR"]) / "audit" / "audit.db"


async def wait_caught_up(audit: ServiceProcess) -> int:
    entries: int = (await caught_up(audit))["entries"]
    return entries


async def seed_task(tasks: ServiceProcess) -> tuple[str, list[tuple[datetime, dict[str, Any]]]]:
    """A task with a few writes; after each, when it happened and what the tasks service showed."""
    snapshots = []
    async with httpx.AsyncClient(base_url=tasks.url) as client:
        task = await plan_and_task(
            client,
            title="Joint lab",
            field="science_technology",
            lead_department="MOST",
            supporting_departments=["JILIN"],
            due=DUE,
        )

        async def snapshot() -> None:
            snapshots.append((datetime.now(UTC), (await client.get(f"/v1/tasks/{task}", headers=NAO)).json()))

        await snapshot()
        await client.post(f"/v1/tasks/{task}/milestones", headers=MOST, json={"title": "Lab opened", "due": DUE})
        await snapshot()
        await client.post(f"/v1/tasks/{task}/progress", headers=MOST, json={"percent": 30, "note": "equipment"})
        await snapshot()
        await client.post(f"/v1/tasks/{task}/progress", headers=JILIN, json={"percent": 55})
        await snapshot()
    return task, snapshots


@pytest.fixture
def tasks(service_factory: ServiceFactory) -> ServiceProcess:
    return service_factory("tasks").start()


@pytest.fixture
def audit(service_factory: ServiceFactory) -> ServiceProcess:
    return service_factory("audit", POLICYTRACK_AUDIT_CHECKPOINT_INTERVAL_SECONDS="1").start()


@pytest.fixture(scope="module")
def audit_refusing(module_services: ServiceFactory) -> ServiceProcess:
    """One service for the cases of bad input: each is refused and changes nothing."""
    return module_services("audit").start()


async def test_queries_replay_and_access(tasks: ServiceProcess, audit: ServiceProcess) -> None:
    task, snapshots = await seed_task(tasks)
    await wait_caught_up(audit)
    async with httpx.AsyncClient(base_url=audit.url) as client:
        mine = (await client.get("/v1/audit/events", headers=NAO, params={"task_id": task})).json()["items"]
        assert [e["event"]["type"].split(".")[2] + "." + e["event"]["type"].split(".")[3] for e in mine] == [
            "task.created",
            "task.assigned",
            "milestone.scheduled",
            "task.progress_reported",
            "task.progress_reported",
        ]
        assert [e["seq"] for e in mine] == sorted(e["seq"] for e in mine), "ordered by log position"
        by_actor = (
            await client.get("/v1/audit/events", headers=NAO, params={"task_id": task, "actor": "u-most"})
        ).json()["items"]
        assert len(by_actor) == 2 and {e["event"]["actordept"] for e in by_actor} == {"MOST"}
        by_type = (
            await client.get(
                "/v1/audit/events", headers=NAO, params={"task_id": task, "type": "task.progress_reported"}
            )
        ).json()["items"]
        assert len(by_type) == 2
        since = (
            await client.get(
                "/v1/audit/events", headers=NAO, params={"task_id": task, "since": snapshots[2][0].isoformat()}
            )
        ).json()["items"]
        assert len(since) == 1
        first_page = (await client.get("/v1/audit/events", headers=NAO, params={"task_id": task, "limit": 2})).json()
        second_page = (
            await client.get(
                "/v1/audit/events",
                headers=NAO,
                params={"task_id": task, "limit": 2, "cursor": first_page["next_cursor"]},
            )
        ).json()
        assert [e["seq"] for e in first_page["items"] + second_page["items"]] == [e["seq"] for e in mine[:4]]

        for moment, state in snapshots:
            replayed = await client.get(
                f"/v1/audit/tasks/{task}/state", headers=NAO, params={"as_of": moment.isoformat()}
            )
            assert replayed.json() == state, f"as of {moment}"
        now = (await client.get(f"/v1/audit/tasks/{task}/state", headers=NAO)).json()
        assert now == (await httpx.AsyncClient(base_url=tasks.url).get(f"/v1/tasks/{task}", headers=NAO)).json()

        assert (await client.get("/v1/audit/events", headers=MEE, params={"task_id": task})).json()["items"] == []
        assert len((await client.get("/v1/audit/events", headers=MOST, params={"task_id": task})).json()["items"]) == 5
        assert (await client.get(f"/v1/audit/tasks/{task}/state", headers=MEE)).status_code == 404
        assert (await client.get("/v1/audit/verify", headers=MEE)).status_code == 403
        responsibility = (await client.get("/v1/audit/responsibility", headers=NAO)).json()["departments"]
        assert responsibility["MOST"]["lead"] >= 1 and responsibility["MOST"]["acts"] >= 2

        # Following the trail: a page after the newest entry waits for the next one.
        newest = {"task_id": task, "cursor": encode_cursor(mine[-1]["seq"])}
        assert (await client.get("/v1/audit/events", headers=NAO, params={**newest, "wait": 0.3})).json() == {
            "items": [],
            "next_cursor": None,
        }
        following = asyncio.create_task(
            client.get("/v1/audit/events", headers=NAO, params={**newest, "wait": 30}, timeout=60)
        )
        async with httpx.AsyncClient(base_url=tasks.url) as writer:
            await writer.post(f"/v1/tasks/{task}/progress", headers=MOST, json={"percent": 70})
        followed = (await following).json()["items"]
        assert [(e["event"]["type"], e["event"]["data"]["percent"]) for e in followed] == [
            ("org.policytrack.task.progress_reported.v1", 70)
        ]
        assert (await client.get("/v1/audit/events", headers=NAO, params={"wait": 31})).status_code == 422


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"type": "task.exploded"}, "type"),
        ({"since": "yesterday"}, "query.since"),
        ({"until": "2027-01-01T00:00:00"}, "query.until"),
        ({"cursor": "bm9wZQ"}, "cursor"),
        ({"department": "MARS"}, "query.department"),
    ],
)
async def test_bad_filters_get_problem_422(audit_refusing: ServiceProcess, params: dict[str, Any], field: str) -> None:
    async with httpx.AsyncClient(base_url=audit_refusing.url) as client:
        response = await client.get("/v1/audit/events", headers=NAO, params=params)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert field in [e["field"] for e in response.json()["errors"]]


async def test_nobody_writes_to_the_trail(audit: ServiceProcess) -> None:
    async with httpx.AsyncClient(base_url=audit.url) as client:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response = await client.request(method, "/v1/audit/events", headers=NAO, json={})
            assert response.status_code == 405, method


async def test_export_streams_every_entry_as_ndjson_and_csv(
    tasks: ServiceProcess, service_factory: ServiceFactory, short_tmp: Path
) -> None:
    """NDJSON written by two processes of the service's own, as a long trail's is (here from the
    first entry on): every entry the pages show, of the whole trail and of one task; CSV here.
    Stopped, the service leaves nothing in its temporary folder: ended by the signal uvicorn
    raises again, it ran no exit handlers and left its process server's folder at every stop."""
    audit = service_factory("audit", POLICYTRACK_AUDIT_EXPORT_SECOND_PROCESS_FROM="0", TMPDIR=str(short_tmp))
    audit.start()
    task, _ = await seed_task(tasks)
    total = await wait_caught_up(audit)
    async with httpx.AsyncClient(base_url=audit.url, timeout=120) as client:
        lines = [
            orjson.loads(line) for line in (await client.get("/v1/audit/export", headers=NAO)).content.splitlines()
        ]
        csv_rows = list(
            csv.DictReader(
                io.StringIO((await client.get("/v1/audit/export", headers=NAO, params={"format": "csv"})).text)
            )
        )
        for where in ({}, {"task_id": task}):
            exported = (await client.get("/v1/audit/export", headers=NAO, params=where)).content.splitlines()
            shown = (await client.get("/v1/audit/events", headers=NAO, params={**where, "limit": 1000})).json()
            assert len(exported) > 3 and list(map(orjson.loads, exported)) == shown["items"][: len(exported)]
    with sqlite3.connect(database(audit)) as db:
        stored = db.execute("select count(*) from audit_entries").fetchone()[0]
    # The audit service goes on taking entries (its own checkpoints among them) between the two
    # exports: each is every entry there was when it began, gap-free, in order.
    assert total <= len(lines) <= len(csv_rows) <= stored
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    assert [int(row["seq"]) for row in csv_rows] == list(range(1, len(csv_rows) + 1))
    assert all(line["event"] or line["decode_error"] for line in lines)
    assert audit.process is not None
    assert any("forkserver" in " ".join(child.cmdline()) for child in psutil.Process(audit.process.pid).children())
    assert [folder.name[:5] for folder in short_tmp.iterdir()] == ["pymp-"], "the export started its server"

    audit.stop()
    assert audit.process.returncode == 128 + signal.SIGTERM
    assert list(short_tmp.iterdir()) == []


async def tamper_and_verify(audit: ServiceProcess, statement: str, *args: object) -> dict[str, Any]:
    await wait_caught_up(audit)
    audit.stop()
    with sqlite3.connect(database(audit)) as db:
        db.execute(statement, args)
    audit.start(wait=False)
    audit.wait_alive()
    async with httpx.AsyncClient(base_url=audit.url, timeout=120) as client:
        verified: dict[str, Any] = (await client.get("/v1/audit/verify", headers=NAO)).json()
        return verified


async def test_an_intact_trail_verifies(tasks: ServiceProcess, audit: ServiceProcess) -> None:
    await seed_task(tasks)
    await wait_caught_up(audit)
    async with httpx.AsyncClient(base_url=audit.url, timeout=120) as client:
        result = (await client.get("/v1/audit/verify", headers=NAO)).json()
    assert result["ok"] is True and result["against_log"] is True and result["entries"] > 0


async def test_an_edited_row_is_found(tasks: ServiceProcess, audit: ServiceProcess) -> None:
    await seed_task(tasks)
    result = await tamper_and_verify(
        audit, "update audit_entries set value = cast(? as blob) where seq = 3", b'{"tampered": true}'
    )
    assert result["ok"] is False
    assert result["divergence"]["sequence"] == 3 and "edited" in result["divergence"]["problem"]


async def test_with_a_second_process_an_edited_query_column_is_found_the_same(
    tasks: ServiceProcess, service_factory: ServiceFactory
) -> None:
    """A verification that decodes the records in a second process (every long trail's) finds
    what one process finds: the same entry, the same changed column."""
    audit = service_factory(
        "audit",
        POLICYTRACK_AUDIT_CHECKPOINT_INTERVAL_SECONDS="1",
        POLICYTRACK_AUDIT_VERIFICATION_SECOND_PROCESS_FROM="0",
    ).start()
    await seed_task(tasks)
    await wait_caught_up(audit)
    async with httpx.AsyncClient(base_url=audit.url, timeout=120) as client:
        intact = (await client.get("/v1/audit/verify", headers=NAO)).json()
    assert intact["ok"] is True and intact["entries"] > 4, intact
    result = await tamper_and_verify(audit, "update audit_entries set actor = 'someone-else' where seq = 2")
    assert result["ok"] is False
    assert result["divergence"]["sequence"] == 2 and result["divergence"]["fields"] == ["actor"]


async def test_a_deleted_row_is_found(tasks: ServiceProcess, audit: ServiceProcess) -> None:
    await seed_task(tasks)
    result = await tamper_and_verify(audit, "delete from audit_entries where seq = 4")
    assert result["ok"] is False
    assert result["divergence"]["sequence"] == 4 and "missing" in result["divergence"]["problem"]


async def test_an_inserted_row_with_a_recomputed_chain_is_found(tasks: ServiceProcess, audit: ServiceProcess) -> None:
    """A forger who inserts an entry and rewrites every hash after it still meets the log."""
    from services.audit.adapters.chaining import derive
    from services.audit.domain.chain import LogRecord, canonical, chain_hash, headers_json

    await seed_task(tasks)
    await wait_caught_up(audit)
    audit.stop()
    with sqlite3.connect(database(audit)) as db:
        rows = db.execute(
            "select seq, topic, partition, offset, timestamp, key, value, headers, hash from audit_entries order by seq"
        ).fetchall()
        forged_after = len(rows) // 2
        db.execute("delete from audit_checkpoints")
        db.execute("update audit_entries set seq = seq + 100000 where seq > ?", (forged_after,))
        previous = rows[forged_after - 1][8]
        fake = LogRecord("policy.events", 0, 10**9, 0, b"x", b"{}", ())
        fake_hash = chain_hash(previous, canonical(fake))
        db.execute(
            "insert into audit_entries (seq, topic, partition, offset, timestamp, key, value, headers, "
            "prev_hash, hash, decode_error) values (?, 'policy.events', 0, ?, 0, ?, ?, ?, ?, ?, ?)",
            (forged_after + 1, 10**9, b"x", b"{}", headers_json(()), previous, fake_hash, derive(fake)["decode_error"]),
        )
        previous = fake_hash
        for seq, topic, partition, offset, timestamp, key, value, headers, _ in rows[forged_after:]:
            record = LogRecord(topic, partition, offset, timestamp, key, value, ())
            digest = chain_hash(previous, canonical(record, headers))
            db.execute(
                "update audit_entries set seq = ?, prev_hash = ?, hash = ? where seq = ?",
                (seq + 1, previous, digest, seq + 100000),
            )
            previous = digest
    audit.start(wait=False)
    audit.wait_alive()
    async with httpx.AsyncClient(base_url=audit.url, timeout=120) as client:
        result = (await client.get("/v1/audit/verify", headers=NAO)).json()
    assert result["ok"] is False
    assert result["divergence"]["sequence"] == forged_after + 1
    problem = result["divergence"]["problem"]
    assert "not on the log" in problem or "removed or inserted" in problem, problem


async def test_the_same_code_path_on_postgresql(
    tasks: ServiceProcess, service_factory: ServiceFactory, postgres_dsn: str
) -> None:
    """PostgreSQL instead of SQLite: ingest, query, replay, verify, and find an edited row."""
    import asyncpg

    audit = service_factory("audit", POLICYTRACK_AUDIT_DSN=postgres_dsn).start()
    task, snapshots = await seed_task(tasks)
    total = await wait_caught_up(audit)
    async with httpx.AsyncClient(base_url=audit.url, timeout=300) as client:
        mine = (await client.get("/v1/audit/events", headers=NAO, params={"task_id": task})).json()["items"]
        assert len(mine) == 5
        moment, state = snapshots[2]
        replayed = await client.get(f"/v1/audit/tasks/{task}/state", headers=NAO, params={"as_of": moment.isoformat()})
        assert replayed.json() == state
        assert (await client.get("/v1/audit/verify", headers=NAO)).json()["ok"] is True
    connection = await asyncpg.connect(postgres_dsn.replace("+asyncpg", ""))
    try:
        assert await connection.fetchval("select count(*) from audit_entries") >= total
        await connection.execute("update audit_entries set actor = 'someone-else' where seq = 2")
    finally:
        await connection.close()
    async with httpx.AsyncClient(base_url=audit.url, timeout=300) as client:
        result = (await client.get("/v1/audit/verify", headers=NAO)).json()
    assert result["ok"] is False and result["divergence"]["sequence"] == 2
    assert result["divergence"]["fields"] == ["actor"], "a changed query column is found, not only changed bytes"
