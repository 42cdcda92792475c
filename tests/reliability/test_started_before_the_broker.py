"""A service started while its broker is down (a broker restarting as the service restarts, as
the chaos test once did with seed 1795980355: audit killed and restarted at the moment of a
broker restart) waits for the broker instead of exiting, and is ready once the broker is."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import Broker, ServiceFactory, eventually


@pytest.mark.parametrize("service", ["audit", "tasks", "notifications"])
async def test_a_service_started_before_its_broker_becomes_ready_when_the_broker_does(
    spare_broker: Broker, service_factory: ServiceFactory, service: str
) -> None:
    assert spare_broker.script("stop").returncode == 0
    process = service_factory(service, **spare_broker.service_env())
    process.start(wait=False)

    async def waiting_for_the_broker() -> bool | None:
        assert process.running, f"{service} exited without its broker:\n{process.log()}"
        return True if "no broker answers yet; retrying" in process.log(tail=100_000) else None

    await eventually(waiting_for_the_broker, timeout=60, what=f"{service} waiting for its broker")
    assert process.running
    assert spare_broker.script("start").returncode == 0
    await asyncio.to_thread(process.wait_ready, 120)
