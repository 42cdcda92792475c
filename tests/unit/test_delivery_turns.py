"""Deliveries take turns per user who subscribed (issue 28, item 3): 32 subscriptions to a slow
endpoint, eight deliveries in flight each, took every connection of the shared pool and starved
every other subscriber. Now one user's subscriptions together have a bounded number in flight."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from services.notifications.adapters.addresses import AddressPolicy
from services.notifications.adapters.delivery import Deliveries, RetryPolicy
from services.notifications.adapters.mail import Alert
from services.notifications.domain.subscriptions import Subscription, Webhook
from shared.contract import catalog as c
from shared.contract.codes import Department
from shared.contract.envelope import new_event
from tests.conftest import eventually
from tests.fakes import RecordingProducer

NOW = datetime(2027, 3, 1, tzinfo=UTC)


class SlowEndpoints(Deliveries):
    """Calls to ``slow`` hosts wait until released; others are answered at once."""

    def __init__(self, owner_in_flight: int) -> None:
        retry = RetryPolicy(timedelta(minutes=5), 0.05, 0.1, 60.0)
        addresses = AddressPolicy(dev=True, allow_private=False, allowed_hosts=frozenset())
        super().__init__(RecordingProducer(), retry, addresses, 1_000, 8, owner_in_flight=owner_in_flight)
        self.release = asyncio.Event()
        self.slow_in_flight = self.most_slow_in_flight = 0
        self.answered: list[str] = []

    async def _post(self, url: str, body: str, headers: dict[str, str]) -> int:
        if "slow" in url:
            self.slow_in_flight += 1
            self.most_slow_in_flight = max(self.most_slow_in_flight, self.slow_in_flight)
            await self.release.wait()
            self.slow_in_flight -= 1
        self.answered.append(url)
        return 204


def subscription(n: int, user: str, url: str) -> Subscription:
    return Subscription(f"sub-{n}", None, None, frozenset(), Webhook(url, "whsec_" + "x" * 32), NOW, user)


def alert(task: int) -> Alert:
    data = c.DeadlineDue(
        alert_id=f"al-{task}", task_id=f"task-{task}", title="Due", due=NOW, departments=(Department.JILIN,)
    )
    return new_event(data, actor="policytrack-notifications", time=NOW)


async def test_one_user_s_slow_subscriptions_hold_a_bounded_number_and_others_are_delivered() -> None:
    deliveries = SlowEndpoints(owner_in_flight=4)
    busy = [subscription(n, "u-busy", f"http://slow.example/{n}") for n in range(32)]
    other = subscription(99, "u-other", "http://fast.example/hooks")
    try:
        for held in busy:
            deliveries.subscribe(held)
            for task in range(8):
                await deliveries.enqueue(held, alert(task))
        await eventually(
            lambda: asyncio.sleep(0.05, result=deliveries.slow_in_flight == 4), what="the busy user's turns"
        )
        deliveries.subscribe(other)
        await deliveries.enqueue(other, alert(1))
        await eventually(
            lambda: asyncio.sleep(0.01, result=getattr(other.endpoint, "url", None) in deliveries.answered),
            what="the other's delivery",
        )
        assert deliveries.most_slow_in_flight == 4, "32 subscriptions of one user, 4 deliveries in flight"
        deliveries.release.set()
        await eventually(
            lambda: asyncio.sleep(0.05, result=len(deliveries.answered) == 32 * 8 + 1), what="every delivery"
        )
    finally:
        deliveries.release.set()
        await deliveries.close()


class BrokenSending(Deliveries):
    """Sending raises what no retry mends (a message that cannot be composed, say)."""

    def __init__(self) -> None:
        retry = RetryPolicy(timedelta(minutes=5), 0.05, 0.1, 60.0)
        addresses = AddressPolicy(dev=True, allow_private=False, allowed_hosts=frozenset())
        super().__init__(RecordingProducer(), retry, addresses, 1_000, 8)

    async def _post(self, url: str, body: str, headers: dict[str, str]) -> int:
        raise ValueError("Header values may not contain linefeed or carriage return characters")


async def test_an_alert_that_cannot_be_sent_at_all_is_recorded_as_failed_never_lost() -> None:
    deliveries = BrokenSending()
    producer = deliveries._producer
    assert isinstance(producer, RecordingProducer)
    held = subscription(1, "u-jilin", "http://hooks.example/in")
    try:
        deliveries.subscribe(held)
        await deliveries.enqueue(held, alert(1))
        failed = await eventually(
            lambda: asyncio.sleep(
                0.01, result=[e for e in producer.published if isinstance(e.data, c.AlertDeliveryFailed)] or None
            ),
            what="the failure recorded",
        )
    finally:
        await deliveries.close()
    assert failed[0].data.alert_id == "al-1" and "ValueError" in failed[0].data.reason
    assert len(producer.dead_letters) == 1, "the alert is kept on the dead-letter topic"
