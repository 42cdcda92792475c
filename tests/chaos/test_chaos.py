"""Chaos: under a steady load of commands from several departments, the tasks, audit and
notifications services are killed with SIGKILL at random moments and the broker is restarted
once. Afterwards, read from the log itself: every acknowledged command is on it exactly once;
the audit trail equals the log and verifies; every alert that fell due reached the webhook
receiver at least once, always under its own ``webhook-id``. ``make test-chaos``."""

from __future__ import annotations

import asyncio
import os
import random
import time
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from shared.contract import catalog as c
from shared.contract.topics import ALERTS
from tests.conftest import NAO, Broker, Receiver, ServiceFactory, caught_up, eventually
from tests.load import WRITERS, Load, keys_on_log, log_of, subscribe_receiver, tasks_with_deadlines

pytestmark = pytest.mark.chaos
FAST = {
    "POLICYTRACK_NOTIFICATIONS_LEAD_TIMES": '["PT3S"]',
    "POLICYTRACK_NOTIFICATIONS_GRACE": "PT1S",
    "POLICYTRACK_NOTIFICATIONS_ESCALATE_AFTER": "P30D",
    "POLICYTRACK_NOTIFICATIONS_RETRY_BASE_SECONDS": "0.2",
    "POLICYTRACK_NOTIFICATIONS_RETRY_MAX_SECONDS": "1",
}
DURATION = float(os.environ.get("POLICYTRACK_CHAOS_SECONDS", "100"))


async def test_kills_and_a_broker_restart_lose_and_duplicate_nothing(
    spare_broker: Broker, service_factory: ServiceFactory, receiver: Receiver
) -> None:
    seed = int(os.environ.get("POLICYTRACK_CHAOS_SEED", time.time()))
    chance = random.Random(seed)
    kafka = spare_broker.settings
    on_spare = spare_broker.service_env()
    tasks = service_factory("tasks", **on_spare).start()
    audit = service_factory("audit", POLICYTRACK_AUDIT_CHECKPOINT_INTERVAL_SECONDS="2", **on_spare).start()
    notifications = service_factory("notifications", **FAST, **on_spare).start()
    started = datetime.now(UTC)
    owned, milestones = await tasks_with_deadlines(
        tasks.url,
        6,
        lambda n: [started + timedelta(seconds=15 + (DURATION - 25) * (2 * n + m) / 12) for m in range(2)],
        title="Chaos",
    )
    await subscribe_receiver(notifications.url, receiver.url)

    load = Load(tasks.url, owned, prefix="chaos")
    writers = [asyncio.create_task(load.writer(d, r)) for d, r in WRITERS.items()]
    faults = sorted(
        [(chance.uniform(0.1, 0.8) * DURATION, name) for name in ("tasks", "audit", "notifications")]
        + [(chance.uniform(0.3, 0.7) * DURATION, "broker")]
    )
    services = {"tasks": tasks, "audit": audit, "notifications": notifications}
    print(f"\nchaos seed {seed}: faults at " + ", ".join(f"{name} +{at:.0f}s" for at, name in faults))
    clock = time.monotonic()
    for at, name in faults:
        await asyncio.sleep(max(0.0, clock + at - time.monotonic()))
        if name == "broker":
            await asyncio.to_thread(spare_broker.script, "restart")
        else:
            services[name].kill()
            services[name].start(wait=False)
    await asyncio.sleep(max(0.0, clock + DURATION - time.monotonic()))
    load.stop.set()
    try:
        await asyncio.wait_for(asyncio.gather(*writers), timeout=120)
    except TimeoutError:
        ended = {name: service.log() for name, service in services.items() if not service.running}
        pytest.fail(f"a writer's last command went unanswered for two minutes; services that exited: {ended}")
    for service in services.values():
        await asyncio.to_thread(service.wait_ready, 180)

    on_log = await keys_on_log(kafka, "chaos")
    missing = load.acknowledged - set(on_log)
    twice = {key: n for key, n in on_log.items() if n > 1}

    async with httpx.AsyncClient(base_url=audit.url, timeout=300) as client:
        await caught_up(audit)
        verified = (await client.get("/v1/audit/verify", headers=NAO)).json()

    due_alerts = {
        e.data.alert_id: e
        for e in await log_of(kafka, ALERTS)
        if isinstance(e.data, c.DeadlineAlert) and e.data.milestone_id in milestones
    }

    async def all_delivered() -> set[str] | None:
        got = {headers["webhook-id"] for _, headers, _ in receiver.received}
        return got if set(due_alerts) <= got else None

    delivered = await eventually(all_delivered, timeout=120, what="every due alert delivered")
    deliveries = [
        (headers["webhook-id"], orjson.loads(body)["data"]["alert_id"]) for _, headers, body in receiver.received
    ]
    print(
        f"acknowledged {len(load.acknowledged):,} (after {load.retries:,} retries) / "
        f"on the log {sum(on_log.values()):,} "
        f"({len(on_log):,} distinct) / in the trail {verified['entries']:,} entries, verified {verified['ok']} / "
        f"alerts due {len(due_alerts)}, delivered {len(set(delivered) & set(due_alerts))} "
        f"({len(deliveries)} deliveries in all)"
    )
    assert not missing, f"{len(missing)} acknowledged commands are not on the log"
    assert not twice, f"{len(twice)} commands are on the log more than once"
    assert verified["ok"] is True, verified["divergence"]
    assert all(webhook_id == alert_id for webhook_id, alert_id in deliveries), "one webhook-id per alert"
    assert len(due_alerts) == 3 * len(milestones), "approaching, due and overdue for every milestone"
    assert load.acknowledged, "the load ran"
