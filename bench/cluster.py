"""Scale-out on three brokers: accepted commands per second over many tasks with one tasks
instance, then with two sharing the partitions (the same 16 clients spread over both), and the
fail-over time: from SIGKILL of an owner to the first command accepted on its partitions.

    .venv/bin/python -m bench.cluster [--seconds 15]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.common import Timed, scratch_broker
from bench.results import Results, Row, scaled
from bench.tasks_service import CLIENTS, new_tasks, start, wrk
from shared.auth import mint_dev_token
from shared.kafka.partitioning import partition_for

PORT = int(os.environ.get("BENCH_CLUSTER_KAFKA_PORT", "29292"))
FIRST, SECOND = 18911, 18912
PARTITIONS = 3


def deciding(url: str) -> set[int]:
    return set(httpx.get(f"{url}/readyz", timeout=10).json().get("deciding_partitions", []))


def wait_for(probe: object, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not probe():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def failover_seconds(survivor: str, orphaned_task: str, killed: subprocess.Popen[bytes]) -> float:
    """From SIGKILL of the owner to the survivor accepting a command on the owner's partition."""
    jilin = {"Authorization": f"Bearer {mint_dev_token('u-bench', 'JILIN', ['implementer'])}"}
    headers = {**jilin, "Idempotency-Key": f"failover-{uuid.uuid4().hex}"}
    killed.kill()
    killed.wait()
    started = time.monotonic()
    with httpx.Client(base_url=survivor, timeout=30) as client:
        while True:
            answer = client.post(
                f"/v1/tasks/{orphaned_task}/progress", json={"percent": 50, "note": "x"}, headers=headers
            )
            if answer.status_code == 200:
                return time.monotonic() - started
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=scaled(15, 3))
    args = parser.parse_args()
    results = Results("cluster")
    jilin = mint_dev_token("u-bench", "JILIN", ["implementer"])
    run = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory() as scratch, scratch_broker(PORT, scratch, nodes=3) as cluster:
        data = Path(scratch)
        processes: list[subprocess.Popen[bytes]] = []
        try:
            env = {
                **cluster.env,
                "POLICYTRACK_ENV": "dev",
                "POLICYTRACK_LOG_LEVEL": "WARNING",
                "POLICYTRACK_TASKS_PARTITIONED_WRITERS": "true",
                "POLICYTRACK_TASKS_TRANSACTIONAL_ID": f"policytrack-tasks-bench-{run}",
                "POLICYTRACK_TASKS_CONSUMER_GROUP": f"policytrack-tasks-bench-{run}",
                "POLICYTRACK_TASKS_WATCH_INTERVAL_SECONDS": "0",
            }
            urls = [f"http://127.0.0.1:{port}" for port in (FIRST, SECOND)]
            processes.append(
                start(
                    [sys.executable, "-m", "services.tasks"],
                    {**env, "POLICYTRACK_TASKS_PORT": str(FIRST), "POLICYTRACK_DATA_DIR": str(data / "one")},
                    urls[0],
                )
            )
            wait_for(lambda: deciding(urls[0]) == set(range(PARTITIONS)), "the first instance to own every partition")
            paths = [f"/v1/tasks/{task}/progress" for task in new_tasks(urls[0], CLIENTS * 4)]
            one = wrk(urls[0], paths, jilin, args.seconds)

            processes.append(
                start(
                    [sys.executable, "-m", "services.tasks"],
                    {**env, "POLICYTRACK_TASKS_PORT": str(SECOND), "POLICYTRACK_DATA_DIR": str(data / "two")},
                    urls[1],
                )
            )
            wait_for(lambda: deciding(urls[0]) and deciding(urls[1]), "both instances to own partitions")
            with ThreadPoolExecutor(2) as pool:
                both = list(pool.map(lambda url: wrk(url, paths, jilin, args.seconds, CLIENTS // 2), urls))
            two = Timed(sum(t.count for t in both), max(t.seconds for t in both))

            first_owns = deciding(urls[0])
            orphaned = next(p.split("/")[3] for p in paths if partition_for(p.split("/")[3], PARTITIONS) in first_owns)
            failover = failover_seconds(urls[1], orphaned, processes[0])
        finally:
            for process in processes:
                process.terminate()
                process.wait()
    print(f"\nTasks on three brokers (wrk, {args.seconds}s each, {CLIENTS} clients; baseline: one instance)")
    results.add(Row("commands over HTTP, many tasks, 1 tasks instance, 3 brokers", one.rate, "cmd/s"))
    results.add(Row("commands over HTTP, many tasks, 2 tasks instances, 3 brokers", two.rate, "cmd/s", one.rate))
    results.add(
        Row(
            "fail-over: a killed owner's partitions take commands again",
            failover,
            "s",
            target=10,
            target_of="value",
            lower_is_better=True,
        )
    )
    results.note("two cores run both instances, three brokers and the load generator: the gain is bounded by them")
    results.save()


if __name__ == "__main__":
    main()
