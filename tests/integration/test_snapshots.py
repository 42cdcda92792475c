"""The tasks service starts from a snapshot plus the events after it, against the real broker;
and a snapshot the log does not bear out is discarded, never trusted."""

from __future__ import annotations

import os
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from policytrack.processes import ServiceProcess
from services.tasks.adapters.snapshots import SnapshotStore
from shared.kafka.snapshots import Claim
from shared.provenance.sealing import SnapshotSeal
from tests.conftest import JILIN, NAO, ServiceFactory, eventually, plan_and_task, readiness, writer_key

DUE = "2027-06-30T18:00:00+08:00"


@pytest.fixture
def snapshot_file(tmp_path: Path) -> Path:
    return tmp_path / "tasks.snapshot.sqlite"


@pytest.fixture
def seal(keys_dir: Path) -> SnapshotSeal:
    """What the service seals its snapshots with (its key, in the test's installation)."""
    return SnapshotSeal(writer_key(keys_dir, "tasks"))


@pytest.fixture
def tasks(service_factory: ServiceFactory, snapshot_file: Path) -> ServiceProcess:
    return service_factory(
        "tasks",
        POLICYTRACK_TASKS_SNAPSHOT_PATH=str(snapshot_file),
        POLICYTRACK_TASKS_SNAPSHOT_INTERVAL_SECONDS="0.2",
    ).start()


async def some_history(client: httpx.AsyncClient, reports: int) -> tuple[str, list[str]]:
    task_id = await plan_and_task(client)
    issue = await client.post(f"/v1/tasks/{task_id}/issues", headers=JILIN, json={"title": "i", "severity": "low"})
    assert issue.status_code == 201, issue.text
    for percent in range(1, reports + 1):
        reported = await client.post(f"/v1/tasks/{task_id}/progress", headers=JILIN, json={"percent": percent})
        assert reported.status_code == 200, reported.text
    return task_id, [f"/v1/tasks/{task_id}", f"/v1/tasks/{task_id}/events", f"/v1/issues/{issue.json()['id']}"]


async def answers(client: httpx.AsyncClient, paths: list[str]) -> dict[str, tuple[int, object]]:
    return {path: ((r := await client.get(path, headers=NAO)).status_code, r.json()) for path in paths}


async def snapshot_covers(snapshot_file: Path, seal: SnapshotSeal, version: int, task_id: str) -> bool | None:
    """Whether the snapshot holds the task at ``version`` (read as the service would)."""
    claim = SnapshotStore(snapshot_file, seal).claim()
    if not isinstance(claim, Claim):
        return None
    with closing(sqlite3.connect(snapshot_file)) as db:
        row = db.execute("SELECT state FROM aggregates WHERE id = ?", (task_id,)).fetchone()
    return True if row is not None and f'"version":{version},'.encode() in row[0] else None


async def test_a_restart_reads_only_what_came_after_the_snapshot_and_answers_the_same(
    tasks: ServiceProcess, snapshot_file: Path
) -> None:
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        _, paths = await some_history(client, reports=20)
        before = await answers(client, paths)
    first = await readiness(tasks)
    assert first["snapshot"] == "none", first
    tasks.restart()  # a clean stop writes a snapshot of everything
    again = await readiness(tasks)
    assert again["snapshot"] == "used", again
    assert again["events"] == 0, "nothing was appended after the snapshot, so nothing is read"
    assert again["events_since_snapshot"] == 0
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        assert await answers(client, paths) == before, "state and history come back whole from the snapshot"


async def test_after_a_kill_the_events_since_the_last_snapshot_are_read_from_the_log(
    tasks: ServiceProcess, snapshot_file: Path, seal: SnapshotSeal
) -> None:
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        task_id, paths = await some_history(client, reports=5)
        version = (await client.get(f"/v1/tasks/{task_id}", headers=NAO)).json()["version"]
        await eventually(
            lambda: snapshot_covers(snapshot_file, seal, version, task_id),
            what="a snapshot with the task at its version",
        )
        for percent in (40, 50, 60):
            reported = await client.post(f"/v1/tasks/{task_id}/progress", headers=JILIN, json={"percent": percent})
            assert reported.status_code == 200
        before = await answers(client, paths)
    tasks.kill()  # no snapshot at stop: the three reports after the last one are only on the log
    tasks.start()
    after = await readiness(tasks)
    assert after["snapshot"] == "used", after
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        assert await answers(client, paths) == before
        history = (await client.get(f"/v1/tasks/{task_id}/events", headers=NAO)).json()
    percents = [e["data"]["percent"] for e in history if "task.progress_reported" in e["type"]]
    assert percents == [1, 2, 3, 4, 5, 40, 50, 60], "the archived history and the newer events, each once"


@pytest.mark.parametrize(
    "tamper",
    [
        'UPDATE aggregates SET state = replace(state, \'"lead_department":"JILIN"\', \'"lead_department":"MOFCOM"\')',
        "UPDATE aggregates SET state = CAST(replace(CAST(state AS TEXT), 'Trade facilitation', 'Trade fabrication') "
        "AS BLOB) WHERE CAST(state AS TEXT) LIKE '%Trade facilitation%'",
        "DELETE FROM history WHERE event_id = (SELECT max(event_id) FROM history)",
        "UPDATE positions SET last_event_id = 'not-on-the-log'",
        "UPDATE meta SET value = 'older-code' WHERE name = 'code_version'",
    ],
    ids=["lead-department", "title", "history-row", "position", "code-version"],
)
async def test_a_changed_snapshot_is_discarded_and_the_state_rebuilt_from_the_log(
    tasks: ServiceProcess, snapshot_file: Path, tamper: str
) -> None:
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        task_id, paths = await some_history(client, reports=3)
        before = await answers(client, paths)
    tasks.stop()  # a clean stop writes the snapshot
    assert stat.S_IMODE(os.stat(snapshot_file).st_mode) == 0o600  # noqa: PTH116  # a sync stat, in the test, "the snapshot is the service's alone"
    with closing(sqlite3.connect(snapshot_file)) as db, db:
        changed_before = db.total_changes
        db.execute(tamper)
        assert db.total_changes > changed_before, "the tamper changed something"
    tasks.start()
    after = await readiness(tasks)
    assert after["snapshot"].startswith("discarded"), after
    assert "seal does not hold" in after["snapshot"] or "not the rows it sealed" in after["snapshot"], after
    assert after["events"] > 0, "rebuilt from the log's beginning"
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        assert await answers(client, paths) == before
        assert (await client.get(f"/v1/tasks/{task_id}", headers=NAO)).json()["lead_department"] == "JILIN"
