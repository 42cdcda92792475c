"""Deadline alerts end to end: the tasks service writes, the notifications service alerts,
a real HTTP receiver started here gets Standard Webhooks it can verify."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from policytrack.processes import ServiceProcess
from tests.conftest import JILIN, SC, Receiver, ServiceFactory, eventually, resolved, token

FAST = {
    "POLICYTRACK_NOTIFICATIONS_LEAD_TIMES": '["PT3S"]',
    "POLICYTRACK_NOTIFICATIONS_GRACE": "PT1S",
    "POLICYTRACK_NOTIFICATIONS_ESCALATE_AFTER": "P1D",
    "POLICYTRACK_NOTIFICATIONS_RETRY_BASE_SECONDS": "0.2",
    "POLICYTRACK_NOTIFICATIONS_RETRY_MAX_SECONDS": "1",
}


@pytest.fixture
def tasks(service_factory: ServiceFactory) -> ServiceProcess:
    return service_factory("tasks").start()


@pytest.fixture
def notifications(service_factory: ServiceFactory) -> ServiceProcess:
    return service_factory("notifications", **FAST).start()


@pytest.fixture(scope="module")
def notifications_refusing(module_services: ServiceFactory) -> ServiceProcess:
    """One service for the cases of bad input: each is refused and changes nothing."""
    return module_services("notifications", **FAST).start()


async def new_task(tasks: ServiceProcess) -> str:
    async with httpx.AsyncClient(base_url=tasks.url) as client:
        plan = (await client.post("/v1/plans", headers=SC, json={"title": "Plan"})).json()["id"]
        task_id: str = (
            await client.post(
                "/v1/tasks",
                headers=JILIN,
                json={
                    "plan_id": plan,
                    "title": "Green corridor",
                    "field": "environment",
                    "lead_department": "JILIN",
                    "supporting_departments": ["MEE"],
                    "due": "2030-01-01T00:00:00Z",
                },
            )
        ).json()["id"]
        return task_id


async def milestone(tasks: ServiceProcess, task_id: str, due: datetime) -> str:
    async with httpx.AsyncClient(base_url=tasks.url) as client:
        response = await client.post(
            f"/v1/tasks/{task_id}/milestones",
            headers=JILIN,
            json={"title": "Monitoring stations", "due": due.isoformat()},
        )
        milestone_id: str = response.json()["id"]
        return milestone_id


async def subscribe(notifications: ServiceProcess, receiver: Receiver, task_id: str) -> str:
    async with httpx.AsyncClient(base_url=notifications.url) as client:
        response = await client.post(
            "/v1/subscriptions", headers=JILIN, json={"webhook_url": receiver.url, "task_id": task_id}
        )
        assert response.status_code == 201, response.text
        secret: str = response.json()["secret"]
        return secret


async def wait_for_kinds(
    receiver: Receiver, secret: str, milestone_id: str, kinds: list[str], timeout: float = 40
) -> list[tuple[float, str]]:
    async def probe() -> list[tuple[float, str]] | None:
        got = receiver.for_milestone(secret, milestone_id)
        return got if [kind for _, kind in got] == kinds else None

    try:
        return await eventually(probe, timeout=timeout, what=f"{kinds} for {milestone_id}")
    except AssertionError as error:
        raise AssertionError(f"{error}; received {receiver.for_milestone(secret, milestone_id)}") from None


async def test_alerts_arrive_on_time_once_each_and_verify(
    tasks: ServiceProcess, notifications: ServiceProcess, receiver: Receiver
) -> None:
    task_id = await new_task(tasks)
    secret = await subscribe(notifications, receiver, task_id)
    due = datetime.now(UTC) + timedelta(seconds=8)
    late = await milestone(tasks, task_id, due)
    in_time = await milestone(tasks, task_id, due + timedelta(seconds=4))
    got = await wait_for_kinds(receiver, secret, late, ["deadline_approaching", "deadline_due", "overdue"])
    expected = [due.timestamp() - 3, due.timestamp(), due.timestamp() + 1]
    for (arrived, kind), moment in zip(got, expected, strict=True):
        assert moment - 0.2 <= arrived <= moment + 1.5, f"{kind} arrived {arrived - moment:+.2f}s off"
    webhook_ids = [headers["webhook-id"] for _, headers, _ in receiver.received]
    assert len(webhook_ids) == len(set(webhook_ids)), "each alert is delivered once"
    assert receiver.received[0][1]["content-type"] == "application/cloudevents+json"

    async with httpx.AsyncClient(base_url=tasks.url) as client:
        await client.post(f"/v1/tasks/{task_id}/milestones/{in_time}/met", headers=JILIN)
    await eventually(lambda: _after(due + timedelta(seconds=6)), timeout=20, what="past the in-time milestone")
    kinds = [kind for _, kind in receiver.for_milestone(secret, in_time)]
    assert "overdue" not in kinds and "deadline_due" not in kinds


async def test_a_receiver_down_for_a_while_gets_the_alert_once_after_retries(
    tasks: ServiceProcess, notifications: ServiceProcess, receiver: Receiver
) -> None:
    task_id = await new_task(tasks)
    secret = await subscribe(notifications, receiver, task_id)
    receiver.down = True
    due = datetime.now(UTC) + timedelta(seconds=2)
    milestone_id = await milestone(tasks, task_id, due)
    await eventually(lambda: resolved(receiver.refused >= 3), timeout=30, what="retries against a down receiver")
    receiver.down = False
    got = await wait_for_kinds(receiver, secret, milestone_id, ["deadline_approaching", "deadline_due", "overdue"])
    assert len(got) == 3


async def test_killed_and_restarted_around_a_deadline_loses_and_repeats_nothing(
    tasks: ServiceProcess, notifications: ServiceProcess, receiver: Receiver
) -> None:
    task_id = await new_task(tasks)
    secret = await subscribe(notifications, receiver, task_id)
    due = datetime.now(UTC) + timedelta(seconds=9)
    milestone_id = await milestone(tasks, task_id, due)
    await wait_for_kinds(receiver, secret, milestone_id, ["deadline_approaching"], timeout=20)
    # Killed before the deadline, not in the instant between a delivery and its receipt on the
    # log: that instant is the at-least-once window, where receivers drop repeats by webhook-id.
    await eventually(lambda: _after(due - timedelta(seconds=1)), timeout=20, what="just before the deadline")
    notifications.kill()
    await eventually(lambda: _after(due + timedelta(seconds=2)), timeout=30, what="the deadline passing while down")
    notifications.start()
    await wait_for_kinds(receiver, secret, milestone_id, ["deadline_approaching", "deadline_due", "overdue"])
    await eventually(lambda: _after(due + timedelta(seconds=6)), timeout=30, what="a while after the restart")
    ids = [
        headers["webhook-id"]
        for _, headers, body in receiver.received
        if orjson.loads(body)["data"].get("milestone_id") == milestone_id
    ]
    assert len(ids) == 3 == len(set(ids))


async def test_the_live_stream_delivers_and_resumes_after_reconnecting(
    tasks: ServiceProcess, notifications: ServiceProcess
) -> None:
    task_id = await new_task(tasks)
    due = datetime.now(UTC) + timedelta(seconds=4)
    milestone_id = await milestone(tasks, task_id, due)
    seen: list[tuple[str | None, dict[str, Any]]] = []
    async with httpx.AsyncClient(base_url=notifications.url, timeout=60) as client:
        async with client.stream("GET", "/v1/alerts/stream", headers=JILIN, params={"from": "beginning"}) as stream:
            async for event_id, event in _sse(stream):
                if event["data"].get("milestone_id") == milestone_id:
                    seen.append((event_id, event))
                    break
        assert seen and seen[0][1]["type"].endswith("deadline_approaching.v1")
        resumed = {**JILIN, "Last-Event-ID": seen[0][0] or ""}
        async with client.stream("GET", "/v1/alerts/stream", headers=resumed) as stream:
            async for event_id, event in _sse(stream):
                if event["data"].get("milestone_id") == milestone_id:
                    seen.append((event_id, event))
                    if len(seen) == 3:
                        break
    assert [e["type"].split(".")[3] for _, e in seen] == ["deadline_approaching", "deadline_due", "overdue"]
    assert len({event_id for event_id, _ in seen}) == 3, "resuming repeats nothing"
    lines: list[str] = []
    async with httpx.AsyncClient(base_url=notifications.url, timeout=30) as client:
        other = token("u-most", "MOST", "supporter")
        async with client.stream("GET", "/v1/alerts/stream", headers=other, params={"from": "beginning"}) as stream:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3):  # everything MOST may see is replayed at once
                    async for line in stream.aiter_lines():
                        lines.append(line)
    assert lines and lines[0] == "retry: 2000"
    assert not any(milestone_id in line for line in lines), "MOST is not a department of this task"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"webhook_url": "ftp://example.org/x"}, "body.webhook_url"),
        ({"webhook_url": "not a url"}, "body.webhook_url"),
        ({"webhook_url": "http://127.0.0.1:1/x", "event_types": ["alert.sneezed"]}, "body.event_types"),
        ({"webhook_url": "http://127.0.0.1:1/x", "secret": ""}, "body.secret"),
        ({"webhook_url": "http://10.1.2.3/x"}, "webhook_url"),
    ],
)
async def test_bad_subscriptions_get_422_naming_the_field(
    notifications_refusing: ServiceProcess, body: dict[str, Any], field: str
) -> None:
    async with httpx.AsyncClient(base_url=notifications_refusing.url) as client:
        response = await client.post("/v1/subscriptions", headers=JILIN, json=body)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


async def _sse(stream: httpx.Response) -> AsyncIterator[tuple[str | None, Any]]:
    event_id: str | None = None
    data: Any = None
    async for line in stream.aiter_lines():
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            data = orjson.loads(line[6:])
        elif line == "" and data is not None:
            yield event_id, data
            event_id, data = None, None


async def _after(moment: datetime) -> bool:
    return datetime.now(UTC) >= moment
