"""Tasks service: accepted commands per second over HTTP with 16 concurrent clients (wrk),
against the HTTP ceiling of a FastAPI route that answers without producing, measured in the
same run, the service on a throw-away broker of its own; and the time to rebuild state from
1,000,000 events (a scratch topic on the real broker).

    .venv/bin/python -m bench.tasks_service [--seconds 15] [--warm-up 60] [--events 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import httpx
import psutil

from bench.common import (
    CpuMeter,
    Timed,
    bench_keys,
    bench_topic,
    fill,
    listening_on,
    local_admin,
    scratch_broker,
    stopwatch,
)
from bench.peer import rebuild_with_eventsourcing
from bench.results import Results, Row, scaled
from services.tasks.adapters.rebuild import catch_up
from services.tasks.adapters.snapshots import SnapshotStore, take_snapshot
from shared.auth import mint_dev_token
from shared.contract import catalog as c
from shared.contract.codes import CooperationField, Department
from shared.contract.envelope import AnyEvent, new_event
from shared.kafka.connection import client_options
from shared.kafka.producer import EventProducer
from shared.process import tune_interpreter
from shared.provenance.sealing import SnapshotSeal
from shared.settings import PROJECT_ROOT, KafkaSettings

CLIENTS = 16
TASKS_PORT, CEILING_PORT, BROKER_PORT = 18901, 18902, 19492
WRK_SCRIPT = """
local paths = {%s}
local n = 0
request = function()
  n = n + 1
  local body = '{"percent": ' .. (n %% 100) .. ', "note": "bench"}'
  return wrk.format("POST", paths[(n %% #paths) + 1], nil, body)
end
"""


def start(args: list[str], env: dict[str, str], url: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        args, env={**os.environ, **env}, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{args} did not become ready")


def wrk(url: str, paths: list[str], token: str, seconds: int, connections: int = CLIENTS) -> Timed:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % ", ".join(f'"{p}"' for p in paths))
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "-s",
            script.name,
            "-H",
            f"Authorization: Bearer {token}",
            "-H",
            "Content-Type: application/json",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    counted = re.search(r"(\d+) requests in", out)
    timed = re.search(r"requests in ([\d.]+)(us|ms|s|m|h),", out)  # wrk: "1.00m" from 60 s
    assert counted is not None and timed is not None, out
    total = int(counted.group(1))
    failed = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    amount, unit = timed.groups()
    elapsed = float(amount) * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}[unit]
    if failed:
        print(f"  ({failed} of {total} requests were not accepted)")
    return Timed(total - failed, elapsed)


def new_tasks(url: str, count: int) -> list[str]:
    """The ids of ``count`` new tasks of a new plan, led by JILIN."""
    jilin = {"Authorization": f"Bearer {mint_dev_token('u-bench', 'JILIN', ['implementer'])}"}
    sc = {"Authorization": f"Bearer {mint_dev_token('u-sc', 'SC', ['approver'])}"}
    due = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    with httpx.Client(base_url=url, timeout=30) as client:
        plan = client.post("/v1/plans", json={"title": "bench"}, headers=sc).json()["id"]
        body = {"plan_id": plan, "field": "trade", "lead_department": "JILIN", "due": due}
        return [
            client.post("/v1/tasks", json={**body, "title": f"t{n}"}, headers=jilin).json()["id"] for n in range(count)
        ]


@dataclass
class HttpFigures:
    service: Timed
    ceiling: Timed
    one_task: Timed
    service_cpu: CpuMeter
    ceiling_cpu: CpuMeter


def http_benchmark(seconds: int, warm_up: int) -> HttpFigures:
    """The tasks service on a throw-away broker of its own, under the same load for ``warm_up``
    seconds before the measured run; then the no-op route. The broker's JIT compiles the
    transaction path only under load: without the warm-up a fresh broker spent 659-682 µs of CPU
    per command in the measured run, after 30 s of load 226-289 and after 60 s 145. The no-op
    route has no broker and no JIT (5,713-5,856 requests/s without a warm-up, 5,731-5,801 with one)."""
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    tasks_url, ceiling_url = f"http://127.0.0.1:{TASKS_PORT}", f"http://127.0.0.1:{CEILING_PORT}"
    jilin = mint_dev_token("u-bench", "JILIN", ["implementer"])
    with tempfile.TemporaryDirectory() as folder, scratch_broker(BROKER_PORT, folder) as broker:
        env = {
            **broker.env,
            "POLICYTRACK_ENV": "dev",
            "POLICYTRACK_LOG_LEVEL": "WARNING",
            "POLICYTRACK_TASKS_PORT": str(TASKS_PORT),
            "POLICYTRACK_TASKS_TRANSACTIONAL_ID": f"policytrack-tasks-bench-{uuid.uuid4().hex[:8]}",
        }
        tasks = start([sys.executable, "-m", "services.tasks"], env, tasks_url)
        try:
            paths = [f"/v1/tasks/{task_id}/progress" for task_id in new_tasks(tasks_url, CLIENTS * 4)]
            if warm_up:
                wrk(tasks_url, paths, jilin, warm_up)
            with CpuMeter({"service": psutil.Process(tasks.pid), "broker": listening_on(broker.port)}) as service_cpu:
                service = wrk(tasks_url, paths, jilin, seconds)
            one_task = wrk(tasks_url, paths[:1], jilin, seconds, connections=32)
        finally:
            tasks.terminate()
            tasks.wait()
    ceiling_process = start(
        [sys.executable, "-m", "bench.http_ceiling"], {"POLICYTRACK_ENV": "dev", "PORT": str(CEILING_PORT)}, ceiling_url
    )
    try:
        with CpuMeter({"no-op route": psutil.Process(ceiling_process.pid)}) as ceiling_cpu:
            ceiling = wrk(ceiling_url, paths, jilin, seconds)
    finally:
        ceiling_process.terminate()
        ceiling_process.wait()
    return HttpFigures(service, ceiling, one_task, service_cpu, ceiling_cpu)


def _history_events(task_id: str, versions: range, due: datetime) -> list[AnyEvent]:
    events: list[AnyEvent] = []
    for v in versions:
        if v == 1:
            data: c.EventData = c.TaskCreated(
                task_id=task_id, plan_id="plan", title=task_id, field=CooperationField.TRADE, due=due
            )
        elif v == 2:
            data = c.TaskAssigned(
                task_id=task_id, lead_department=Department.JILIN, supporting_departments=(Department.MOFCOM,)
            )
        else:
            data = c.TaskProgressReported(task_id=task_id, percent=v % 100, note="weekly report")
        events.append(new_event(data, actor="u-jilin", actordept=Department.JILIN, aggregateversion=v))
    return events


async def _write(producer: EventProducer, topic: str, tasks: int, versions: range) -> None:
    due = datetime(2027, 12, 31, tzinfo=UTC)
    await fill(producer, topic, (e for t in range(tasks) for e in _history_events(f"task-{t}", versions, due)))


@dataclass
class StartFigures:
    rebuilt: Timed
    in_one: Timed
    """The same rebuild read in this one process, as before partitions were read apart."""
    bare: Timed
    snapshot_seconds: float
    snapshot_mib: float
    started: Timed
    after_snapshot: int


async def rebuild_benchmark(count: int) -> StartFigures:
    """Writes ``count`` events of 10,000 tasks to a scratch topic and rebuilds from it; then
    snapshots, appends 1% more, and starts again from the snapshot as the service does."""
    kafka = local_admin()
    per_task = 100
    tasks = count // per_task
    keys = bench_keys()
    signing = keys.signing_key("tasks", create=True)
    trust = keys.trust()
    async with (
        bench_topic(kafka) as topic,
        EventProducer(kafka, client_id="bench-rebuild-writer", signing_key=signing) as producer,
    ):
        await _write(producer, topic, tasks, range(1, per_task + 1))
        writers = {topic: {"tasks"}}
        with tempfile.TemporaryDirectory() as scratch:
            store = SnapshotStore(Path(scratch) / "one.snapshot.sqlite", SnapshotSeal(signing))
            with stopwatch(Timed(count)) as in_one:
                _, report = await catch_up(kafka, store, trust, topic, writers, in_parts_from=None)
            assert report.events == count, report
        with tempfile.TemporaryDirectory() as scratch:
            store = SnapshotStore(Path(scratch) / "tasks.snapshot.sqlite", SnapshotSeal(signing))
            with stopwatch(Timed(count)) as rebuilt:
                view, report = await catch_up(kafka, store, trust, topic, writers)
            assert report.events == count and len(view.projection.aggregates) == tasks, report
            snapshot_started = time.perf_counter()
            await take_snapshot(store, view)
            snapshot_seconds = time.perf_counter() - snapshot_started
            bare = await bare_read(kafka, topic, count)
            await _write(producer, topic, tasks, range(per_task + 1, per_task + 2))
            with stopwatch(Timed(count + tasks)) as started:
                view, report = await catch_up(kafka, store, trust, topic, writers)
            assert report.snapshot == "used" and report.events == tasks, report
            size = store.size_mib()
    return StartFigures(rebuilt, in_one, bare, snapshot_seconds, size, started, tasks)


async def bare_read(kafka: KafkaSettings, topic: str, count: int) -> Timed:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        **client_options(kafka), enable_auto_commit=False, max_partition_fetch_bytes=8 * 1024 * 1024
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(3)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen = 0
        with stopwatch(Timed(count)) as timed:
            while seen < count:
                for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                    seen += len(records)
    finally:
        await consumer.stop()
    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=scaled(15, 3))
    parser.add_argument("--warm-up", type=int, default=scaled(60, 2), help="seconds of load before measuring")
    parser.add_argument("--events", type=int, default=scaled(1_000_000, 20_000))
    args = parser.parse_args()
    tune_interpreter()
    results = Results("tasks_service")
    http = http_benchmark(args.seconds, args.warm_up)
    print(
        f"\nTasks service over HTTP (wrk, {args.seconds}s each after {args.warm_up}s of the same load; "
        "baseline: a FastAPI route that only answers)"
    )
    results.add(
        Row(
            f"commands over HTTP, many tasks, {CLIENTS} clients, vs no-op route",
            http.service.rate,
            "cmd/s",
            http.ceiling.rate,
            0.5,
        )
    )
    results.note(http.service_cpu.per(http.service.count, "command"))
    results.note(http.ceiling_cpu.per(http.ceiling.count, "no-op request"))
    results.add(
        Row("commands on ONE task, 32 concurrent clients", http.one_task.rate, "cmd/s", target=500, target_of="value")
    )
    figures = asyncio.run(rebuild_benchmark(args.events))
    rebuilt, bare = figures.rebuilt, figures.bare
    print(f"\nRebuilding the tasks service's state from {args.events:,} events (baseline: a bare aiokafka read)")
    results.add(
        Row(
            "replay of our own log (tasks rebuild) vs bare read",
            rebuilt.rate,
            "ev/s",
            bare.rate,
            target=70_000,
            target_of="value",
        )
    )
    results.add(
        Row(
            "tasks rebuild, a partition a process, vs the same in one process",
            rebuilt.rate,
            "ev/s",
            figures.in_one.rate,
        )
    )
    results.add(
        Row(
            f"tasks start: snapshot + the {figures.after_snapshot:,} events after it",
            figures.started.seconds,
            "s",
            rebuilt.seconds,
            target=5,
            target_of="value",
            lower_is_better=True,
        )
    )
    results.note(
        f"baseline of the start: the whole log folded without a snapshot ({rebuilt.seconds:.1f}s); "
        f"writing the snapshot took {figures.snapshot_seconds:.1f}s, {figures.snapshot_mib:,.0f} MiB on disk"
    )
    events, seconds = rebuild_with_eventsourcing(args.events // 100, 100)
    print("\nThe peer: the eventsourcing library reading back the same aggregates from its SQLite store")
    results.add(
        Row("tasks rebuild vs eventsourcing library (SQLite), same events", rebuilt.rate, "ev/s", events / seconds, 2.0)
    )
    results.note(
        f"eventsourcing {version('eventsourcing')} read {events:,} events of {args.events // 100:,} aggregates "
        f"in {seconds:.1f}s"
    )
    results.save()


if __name__ == "__main__":
    main()
