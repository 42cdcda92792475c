"""Scale-out on Kafka itself (``make test-cluster``): three brokers, two instances of every
service, a steady load of commands from several departments over many tasks, and a webhook
receiver. During the run one broker stops (its partitions' leaders move) and one instance of
each service is killed with SIGKILL; then all come back. Afterwards, read from the log itself:
every acknowledged command is on it once, the audit trail verifies against it, every due alert
reached the receiver under its own ``webhook-id``, and no caller got a 5xx other than 503 with
Retry-After. Prints the counts and the command latency before, during and after the faults."""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from cryptography.fernet import Fernet

from policytrack.processes import ServiceProcess
from shared.contract import catalog as c
from shared.contract.topics import ALERTS
from shared.kafka.partitioning import partition_for
from tests.conftest import (
    NAO,
    Broker,
    Receiver,
    cluster_settings,
    eventually,
    readiness,
    services_on,
)
from tests.load import WRITERS, Load, keys_on_log, log_of, subscribe_receiver, tasks_with_deadlines

pytestmark = pytest.mark.cluster
DURATION = float(os.environ.get("POLICYTRACK_CLUSTER_SECONDS", "100"))
FAST_ALERTS = {
    "POLICYTRACK_NOTIFICATIONS_LEAD_TIMES": '["PT3S"]',
    "POLICYTRACK_NOTIFICATIONS_GRACE": "PT1S",
    "POLICYTRACK_NOTIFICATIONS_ESCALATE_AFTER": "P30D",
    "POLICYTRACK_NOTIFICATIONS_RETRY_BASE_SECONDS": "0.2",
    "POLICYTRACK_NOTIFICATIONS_RETRY_MAX_SECONDS": "1",
}


def percentiles(latencies: list[float]) -> str:
    if len(latencies) < 2:
        return f"{len(latencies)} commands"
    cuts = statistics.quantiles(latencies, n=100)
    return f"{len(latencies):,} commands, p50 {cuts[49] * 1000:.0f} ms, p99 {cuts[98] * 1000:.0f} ms"


async def partitions_split(instances: list[ServiceProcess], partitions: int) -> list[set[int]]:
    async def probe() -> list[set[int]] | None:
        owned = [set((await readiness(i)).get("deciding_partitions", [])) for i in instances]
        whole = set().union(*owned) == set(range(partitions)) and sum(map(len, owned)) == partitions
        return owned if whole and all(owned) else None

    return await eventually(probe, timeout=90, what="partitions shared by both instances")


async def audit_writer(audits: list[ServiceProcess]) -> ServiceProcess:
    async def probe() -> ServiceProcess | None:
        for audit in audits:
            if audit.running and (await readiness(audit)).get("role") == "writer":
                return audit
        return None

    return await eventually(probe, timeout=60, what="an audit writer")


def longest_pause(answered: list[tuple[float, float, str]], tasks: set[str], around: float) -> float:
    """The longest time without an acknowledged command on ``tasks`` in the minute after ``around``."""
    times = sorted(when for when, _, task in answered if task in tasks and around - 5 <= when <= around + 60)
    return max((b - a for a, b in itertools.pairwise(times)), default=float("nan"))


async def test_two_of_each_service_on_three_brokers_survive_a_broker_stop_and_kills(
    cluster: Broker, receiver: Receiver, postgres_dsn: str, tmp_path: Path, keys_dir: Path
) -> None:
    kafka = cluster_settings(cluster)
    run = uuid.uuid4().hex[:8]
    on_cluster = cluster.service_env(kafka.bootstrap_servers)
    tasks_env = {
        "POLICYTRACK_TASKS_PARTITIONED_WRITERS": "true",
        "POLICYTRACK_TASKS_TRANSACTIONAL_ID": f"policytrack-tasks-cluster-{run}",
        "POLICYTRACK_TASKS_CONSUMER_GROUP": f"policytrack-tasks-cluster-{run}",
    }
    audit_env = {
        "POLICYTRACK_AUDIT_DSN": postgres_dsn,
        "POLICYTRACK_AUDIT_CHAIN_ID": f"cluster-chain-{run}",
        "POLICYTRACK_AUDIT_SIGNING_KEY_PATH": str(tmp_path / "signing-key.pem"),
        "POLICYTRACK_AUDIT_LEASE_CHECK_SECONDS": "0.5",
        "POLICYTRACK_AUDIT_CHECKPOINT_INTERVAL_SECONDS": "2",
    }
    notifications_env = {
        "POLICYTRACK_NOTIFICATIONS_PARTITIONED": "true",
        "POLICYTRACK_NOTIFICATIONS_OWNERS_GROUP": f"policytrack-notifications-cluster-{run}",
        "POLICYTRACK_NOTIFICATIONS_SEALING_KEY": Fernet.generate_key().decode(),
        **FAST_ALERTS,
    }
    with services_on(cluster, tmp_path, keys_dir) as make:
        tasks = [make("tasks", **on_cluster, **tasks_env).start() for _ in range(2)]
        audits = [make("audit", **on_cluster, **audit_env).start() for _ in range(2)]
        notifications = [make("notifications", **on_cluster, **notifications_env).start() for _ in range(2)]
        await partitions_split(tasks, kafka.partitions)
        await partitions_split(notifications, kafka.partitions)
        started = datetime.now(UTC)
        owned, milestones = await tasks_with_deadlines(
            tasks[0].url, 12, lambda n: [started + timedelta(seconds=20 + (DURATION - 30) * n / 12)], title="Cluster"
        )
        await subscribe_receiver(notifications[0].url, receiver.url)

        load = Load([t.url for t in tasks], owned, prefix=f"cluster-{run}")
        writers = [asyncio.create_task(load.writer(d, r, instance=n % 2)) for n, (d, r) in enumerate(WRITERS.items())]
        clock = time.monotonic()
        await asyncio.sleep(DURATION * 0.2)

        faults_began = time.monotonic()
        assert (await asyncio.to_thread(cluster.script, "stop", "--node", "2")).returncode == 0
        # The instance killed decides for a partition that holds tasks: with twelve tasks on three
        # partitions one may hold none, and its owner's fail-over would measure nothing.
        with_tasks = {partition_for(t, kafka.partitions) for ts in owned.values() for t in ts}
        deciding = [set((await readiness(instance))["deciding_partitions"]) for instance in tasks]
        killed = next(n for n, partitions in enumerate(deciding) if partitions & with_tasks)
        orphaned_partitions = deciding[killed]
        victims = [tasks[killed], await audit_writer(audits), notifications[0]]
        killed_at = time.monotonic()
        for victim in victims:
            victim.kill()
        await asyncio.sleep(DURATION * 0.15)
        for victim in victims:
            victim.start(wait=False)
        assert (await asyncio.to_thread(cluster.script, "start", "--nodes", "3")).returncode == 0
        for service in [*tasks, *audits, *notifications]:
            await asyncio.to_thread(service.wait_ready, 180)
        recovered = time.monotonic()
        await asyncio.sleep(max(DURATION * 0.2, clock + DURATION - time.monotonic()))
        load.stop.set()
        await asyncio.wait_for(asyncio.gather(*writers), timeout=120)

        on_log = await keys_on_log(kafka, f"cluster-{run}")
        missing = load.acknowledged - set(on_log)
        twice = {key: n for key, n in on_log.items() if n > 1}

        writer = await audit_writer(audits)

        async def trail_caught_up() -> dict[str, Any] | None:
            ready = await readiness(writer)
            return ready if ready.get("lag") == 0 else None

        await eventually(trail_caught_up, timeout=180, what="the audit writer caught up with the log")
        async with httpx.AsyncClient(base_url=audits[0].url, timeout=300) as client:
            verified = (await client.get("/v1/audit/verify", headers=NAO)).json()

        due_alerts = {
            e.data.alert_id
            for e in await log_of(kafka, ALERTS)
            if isinstance(e.data, c.DeadlineAlert) and e.data.milestone_id in milestones
        }

        async def all_delivered() -> set[str] | None:
            got = {headers["webhook-id"] for _, headers, _ in receiver.received}
            return got if due_alerts <= got else None

        await eventually(all_delivered, timeout=120, what="every due alert delivered")

    deliveries = [
        (headers["webhook-id"], orjson.loads(body)["data"]["alert_id"]) for _, headers, body in receiver.received
    ]
    repeated = sum(n - 1 for n in Counter(webhook_id for webhook_id, _ in deliveries).values())
    orphaned = {t for ts in owned.values() for t in ts if partition_for(t, kafka.partitions) in orphaned_partitions}
    before = [latency for when, latency, _ in load.answered if when < faults_began]
    during = [latency for when, latency, _ in load.answered if faults_began <= when < recovered]
    after = [latency for when, latency, _ in load.answered if when >= recovered]
    print(
        f"\nacknowledged {len(load.acknowledged):,} (after {load.retries:,} retries) / on the log "
        f"{sum(on_log.values()):,} ({len(on_log):,} distinct, {len(missing)} missing, {len(twice)} twice) / "
        f"trail {verified['entries']:,} entries, verified {verified['ok']} / alerts due {len(due_alerts)}, "
        f"delivered {len(due_alerts)} ({len(deliveries)} deliveries, {repeated} repeated under the same webhook-id) / "
        f"unexpected 5xx {len(load.unexpected)}"
    )
    print(f"commands before the faults: {percentiles(before)}")
    print(f"commands during (broker down, kills, restarts; {recovered - faults_began:.0f} s): {percentiles(during)}")
    print(f"commands after: {percentiles(after)}")
    print(
        f"fail-over: the longest pause on the killed tasks instance's partitions {orphaned_partitions} was "
        f"{longest_pause(load.answered, orphaned, killed_at):.1f} s"
    )
    assert not missing, f"{len(missing)} acknowledged commands are not on the log"
    assert not twice, f"{len(twice)} commands are on the log more than once"
    assert verified["ok"] is True, verified.get("divergence")
    assert all(webhook_id == alert_id for webhook_id, alert_id in deliveries), "one webhook-id per alert"
    assert len(due_alerts) == 3 * len(milestones), "approaching, due and overdue for every milestone"
    assert not load.unexpected, load.unexpected[:5]
    assert before and during and after, "the load ran through every phase"
