"""Scale-out on three brokers: accepted commands per second over many tasks with one tasks
instance, then with two sharing the partitions (the same 16 clients spread over both), and the
fail-over time: from SIGKILL of an owner to the first command accepted on its partitions.

Each figure is taken after ``--warm-up`` seconds of the same load, and says where the CPU went
(each broker, its JIT compiler apart, and each instance) and which requests each broker answered
per command. Measured from the brokers' start, three JVMs compiling their hot paths took half of
their CPU and the two cores were saturated: 136-155 commands/s that way, 450-551 after 40 s.

    .venv/bin/python -m bench.cluster [--seconds 15] [--warm-up 40]
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
from contextlib import ExitStack
from pathlib import Path

import httpx
import psutil

from bench.common import BrokerRequests, CpuMeter, Timed, listening_on, scratch_broker
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


def under_load(
    brokers: dict[str, BrokerRequests],
    instances: dict[int, subprocess.Popen[bytes]],
    paths: list[str],
    token: str,
    seconds: int,
) -> tuple[Timed, list[str]]:
    """Accepted commands while the same clients, split evenly, send to every instance at once,
    and where the cluster's CPU and requests went meanwhile."""
    urls = [f"http://127.0.0.1:{port}" for port in instances]
    counters = list(brokers.values())
    processes = {f"tasks on {port}": psutil.Process(process.pid) for port, process in instances.items()}
    with ExitStack() as counting, ThreadPoolExecutor(len(urls)) as pool:
        for counter in counters:
            counting.enter_context(counter)
        with CpuMeter({**{name: c.broker for name, c in brokers.items()}, **processes}) as meter:
            each = list(pool.map(lambda url: wrk(url, paths, token, seconds, CLIENTS // len(urls)), urls))
    timed = Timed(sum(t.count for t in each), max(t.seconds for t in each))
    where = [meter.per(timed.count, "command")]
    where += [f"{name}: {counter.per(timed.count, 'command')}" for name, counter in zip(brokers, counters, strict=True)]
    return timed, where


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=scaled(15, 3))
    parser.add_argument("--warm-up", type=int, default=scaled(40, 2), help="seconds of load before measuring")
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
            # A broker's JMX agent starts once in its JVM, so each broker's counter serves both figures.
            brokers = {
                f"broker {node + 1}": BrokerRequests(listening_on(cluster.port + node)) for node in range(cluster.nodes)
            }
            wrk(urls[0], paths, jilin, args.warm_up)
            one, where_one = under_load(brokers, {FIRST: processes[0]}, paths, jilin, args.seconds)

            processes.append(
                start(
                    [sys.executable, "-m", "services.tasks"],
                    {**env, "POLICYTRACK_TASKS_PORT": str(SECOND), "POLICYTRACK_DATA_DIR": str(data / "two")},
                    urls[1],
                )
            )
            wait_for(lambda: deciding(urls[0]) and deciding(urls[1]), "both instances to own partitions")
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(lambda url: wrk(url, paths, jilin, args.warm_up, CLIENTS // 2), urls))
            two, where_two = under_load(
                brokers, {FIRST: processes[0], SECOND: processes[1]}, paths, jilin, args.seconds
            )

            first_owns = deciding(urls[0])
            orphaned = next(p.split("/")[3] for p in paths if partition_for(p.split("/")[3], PARTITIONS) in first_owns)
            failover = failover_seconds(urls[1], orphaned, processes[0])
        finally:
            for process in processes:
                process.terminate()
                process.wait()
    print(
        f"\nTasks on three brokers (wrk, {args.seconds}s each after {args.warm_up}s of the same load, "
        f"{CLIENTS} clients; baseline: one instance)"
    )
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
    for instances, where in (("one instance", where_one), ("two instances", where_two)):
        for line in where:
            results.note(f"{instances}: {line}")
    results.note("two cores run both instances, three brokers and the load generator: the gain is bounded by them")
    results.save()


if __name__ == "__main__":
    main()
