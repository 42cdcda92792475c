"""The live alert stream loses nothing: alerts of one moment from different partitions all
arrive, and resuming after any event id sends every later alert exactly once. Live streams
share the service's one read of the log. A stream ends when the caller's token expires."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson

from policytrack.processes import ServiceProcess
from shared.auth import mint_dev_token
from shared.contract import catalog as c
from shared.contract.codes import Department
from shared.contract.envelope import new_event
from shared.kafka.producer import EventProducer
from shared.settings import KafkaSettings
from tests.conftest import JILIN, NAO, SC, ServiceFactory, eventually, writer_key


async def read_stream(
    notifications: ServiceProcess,
    headers: dict[str, str],
    wanted: set[str],
    stop_after: int,
    last_event_id: str | None = None,
) -> list[tuple[str, str]]:
    """(event id, alert id) of our alerts, in order, until ``stop_after`` of them or all."""
    seen: list[tuple[str, str]] = []
    resume = {"Last-Event-ID": last_event_id} if last_event_id else {}
    async with (
        httpx.AsyncClient(base_url=notifications.url, timeout=30) as client,
        asyncio.timeout(60),
        client.stream(
            "GET", "/v1/alerts/stream", headers={**headers, **resume}, params={"from": "beginning"}
        ) as stream,
    ):
        event_id = None
        async for line in stream.aiter_lines():
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: "):
                alert = orjson.loads(line[6:])["data"]["alert_id"]
                if alert in wanted:
                    seen.append((event_id or "", alert))
                    if len(seen) >= stop_after or {a for _, a in seen} >= wanted:
                        return seen
    return seen


async def streams_reading(notifications: ServiceProcess, read: str) -> float:
    """How many live streams read the log ``read`` ("shared" or "apart"), from ``/metrics``."""
    async with httpx.AsyncClient(base_url=notifications.url, timeout=10) as client:
        metrics = (await client.get("/metrics")).text
    prefix = f'policytrack_alert_streams{{read="{read}"}} '
    return next((float(line.removeprefix(prefix)) for line in metrics.splitlines() if line.startswith(prefix)), 0.0)


def deadline_alerts(count: int, moment: datetime) -> list[c.DeadlineDue]:
    return [
        c.DeadlineDue(
            alert_id=f"al-{uuid.uuid4().hex[:12]}",
            task_id=f"t-stream-{n}",
            title="Due",
            due=moment,
            departments=(Department.JILIN,),
        )
        for n in range(count)
    ]


async def publish(kafka_settings: KafkaSettings, keys_dir: Path, alerts: list[c.DeadlineDue], moment: datetime) -> None:
    async with EventProducer(
        kafka_settings, client_id="test-stream", signing_key=writer_key(keys_dir, "notifications")
    ) as producer:
        await producer.publish_all(
            new_event(a, actor="policytrack-notifications", id=a.alert_id, time=moment) for a in alerts
        )


async def test_resuming_after_any_event_sends_every_later_alert_exactly_once(
    service_factory: ServiceFactory, kafka_settings: KafkaSettings, tmp_path: Path, keys_dir: Path
) -> None:
    # Two alerts kept for the streams (up to three): a resumed stream reads the log apart
    # until it has caught up, then what the service reads, and loses nothing on the way.
    notifications = service_factory("notifications", POLICYTRACK_NOTIFICATIONS_LIVE_ALERTS_KEPT="2").start()
    moment = datetime.now(UTC).replace(microsecond=0)
    alerts = deadline_alerts(24, moment)
    wanted = {a.alert_id for a in alerts}
    live = asyncio.create_task(read_stream(notifications, JILIN, wanted, stop_after=len(wanted)))

    async def connected() -> bool:  # and caught up with what was there before: it reads what the service reads
        return await streams_reading(notifications, "shared") == 1

    await eventually(connected, what="the stream connected")
    for batch in (alerts[:12], alerts[12:]):  # alerts of one moment, arriving while the stream is live
        await publish(kafka_settings, keys_dir, batch, moment)
    assert sorted(a for _, a in await live) == sorted(wanted), "a live listener gets every alert once"
    assert len({a.task_id for a in alerts}) > 3, "spread over partitions"
    for cut in (1, 5, 12, 23):
        first = await read_stream(notifications, JILIN, wanted, stop_after=cut)
        rest = await read_stream(
            notifications, JILIN, wanted - {a for _, a in first}, stop_after=len(wanted), last_event_id=first[-1][0]
        )
        received = [a for _, a in first + rest]
        assert sorted(received) == sorted(wanted), f"cut after {cut}: every alert exactly once"


async def test_live_streams_share_the_service_s_one_read_of_the_log(
    service_factory: ServiceFactory, kafka_settings: KafkaSettings, keys_dir: Path
) -> None:
    """Each stream read the log with a consumer of its own: every open dashboard cost a reader,
    a fetch and a signature check per alert. Now only a stream that resumes from further back
    than the service keeps reads apart, until it has caught up."""
    notifications = service_factory("notifications").start()
    moment = datetime.now(UTC).replace(microsecond=0)
    alerts = deadline_alerts(10, moment)
    wanted = {a.alert_id for a in alerts}
    tokens = [{"Authorization": f"Bearer {mint_dev_token(f'u-{n}', 'JILIN', ['implementer'])}"} for n in range(3)]
    streams = [asyncio.create_task(read_stream(notifications, t, wanted, stop_after=len(wanted))) for t in tokens]

    async def all_shared() -> bool:
        return await streams_reading(notifications, "shared") == 3

    await eventually(all_shared, what="three streams reading what the service reads")
    await publish(kafka_settings, keys_dir, alerts, moment)
    for stream in streams:
        assert sorted(a for _, a in await stream) == sorted(wanted), "every listener gets every alert once"
    assert await streams_reading(notifications, "apart") == 0


async def test_the_stream_ends_when_the_token_expires(service_factory: ServiceFactory) -> None:
    notifications = service_factory("notifications").start()
    short = {"Authorization": f"Bearer {mint_dev_token('u-jilin', 'JILIN', ['implementer'], ttl_seconds=2)}"}
    lines: list[str] = []
    async with (
        httpx.AsyncClient(base_url=notifications.url, timeout=30) as client,
        asyncio.timeout(40),
        client.stream("GET", "/v1/alerts/stream", headers=short, params={"from": "now"}) as stream,
    ):
        lines.extend([line async for line in stream.aiter_lines()])
    assert "event: end" in lines and any("token expired" in line for line in lines)


async def test_a_reader_of_everything_cannot_remove_a_subscription(service_factory: ServiceFactory) -> None:
    """An auditor of the National Audit Office used to get 204 on the State Council's subscription."""
    notifications = service_factory("notifications").start()
    async with httpx.AsyncClient(base_url=notifications.url, timeout=30) as client:
        made = await client.post("/v1/subscriptions", headers=SC, json={"webhook_url": "http://127.0.0.1:9/hooks"})
        subscription = made.json()["id"]
        for reader in (NAO, JILIN):
            assert (await client.delete(f"/v1/subscriptions/{subscription}", headers=reader)).status_code == 403
        assert (await client.get(f"/v1/subscriptions/{subscription}", headers=SC)).status_code == 200
        assert (await client.delete(f"/v1/subscriptions/{subscription}", headers=SC)).status_code == 204


async def test_one_user_s_streams_and_subscriptions_are_bounded_and_the_others_go_on(
    service_factory: ServiceFactory,
) -> None:
    """Issue 28, item 3: each stream opened its own consumer from the topic's start, with no
    bound per user or in all, and a user could make subscriptions without end."""
    notifications = service_factory(
        "notifications",
        POLICYTRACK_NOTIFICATIONS_STREAMS='{"per_user": 2, "in_all": 3, "retry_after_seconds": 7}',
        POLICYTRACK_NOTIFICATIONS_SUBSCRIPTIONS='{"per_user": 2, "in_all": 100}',
    ).start()
    busy = {"Authorization": f"Bearer {mint_dev_token('u-busy', 'JILIN', ['implementer'])}"}
    async with contextlib.AsyncExitStack() as held, httpx.AsyncClient(base_url=notifications.url, timeout=30) as client:
        for _ in range(2):
            stream = await held.enter_async_context(client.stream("GET", "/v1/alerts/stream", headers=busy))
            assert stream.status_code == 200
        third = await client.get("/v1/alerts/stream", headers=busy, timeout=5)
        assert third.status_code == 429 and third.headers["retry-after"] == "7"
        assert third.headers["content-type"].startswith("application/problem+json")
        async with client.stream("GET", "/v1/alerts/stream", headers=SC) as other:
            assert other.status_code == 200, "another user still gets a stream"
            assert (await client.get("/v1/alerts/stream", headers=NAO, timeout=5)).status_code == 429, (
                "everyone's bound: 3"
            )

        hook = {"webhook_url": "http://127.0.0.1:9/hooks"}
        made = [await client.post("/v1/subscriptions", headers=busy, json=hook) for _ in range(3)]
        assert [m.status_code for m in made] == [201, 201, 429], [m.text for m in made]
        assert (await client.post("/v1/subscriptions", headers=SC, json=hook)).status_code == 201

    async def freed() -> bool:  # the streams closed by the client give their slots back
        async with (
            httpx.AsyncClient(base_url=notifications.url, timeout=30) as client,
            client.stream("GET", "/v1/alerts/stream", headers=busy) as again,
        ):
            return again.status_code == 200

    await eventually(freed, timeout=30, what="the closed streams' slots released")
