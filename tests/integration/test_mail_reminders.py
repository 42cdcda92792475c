"""Reminders by mail, end to end: the tasks service writes, the notifications service mails a
real SMTP server (aiosmtpd) in the reader's language and Beijing time, and each delivery, or
its failure against a server that refuses or hangs, is recorded on the log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx

from shared.contract import catalog as c
from shared.contract.codec import decode_record
from shared.contract.envelope import CloudEvent
from shared.contract.topics import ALERTS
from shared.i18n import BEIJING
from shared.settings import KafkaSettings
from tests.conftest import JILIN, MEE, Mailroom, ServiceFactory, eventually, read_to_end, resolved, smtp_of
from tests.integration.test_notifications_service import FAST, milestone, new_task


async def receipts(settings: KafkaSettings, subscription_id: str) -> list[c.AlertDelivered | c.AlertDeliveryFailed]:
    events = [e for e in map(decode_record, await read_to_end(settings, ALERTS)) if isinstance(e, CloudEvent)]
    return [
        e.data
        for e in events
        if isinstance(e.data, c.AlertDelivered | c.AlertDeliveryFailed) and e.data.subscription_id == subscription_id
    ]


async def subscribe(client: httpx.AsyncClient, headers: dict[str, str], **body: object) -> str:
    answer = await client.post("/v1/mail-subscriptions", headers=headers, json=body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["address"] == body["address"] and answer.json()["channel"] == "mail"
    return str(answer.json()["id"])


async def test_a_deadline_is_mailed_in_chinese_with_beijing_time_and_failures_are_recorded(
    service_factory: ServiceFactory, kafka_settings: KafkaSettings, mailroom: Mailroom
) -> None:
    tasks = service_factory("tasks").start()
    notifications = service_factory(
        "notifications",
        **FAST,
        # Long enough that the refusing server answers within it on a loaded machine (two suites at
        # once: its last try timed out and was recorded as a timeout), short enough for two tries.
        POLICYTRACK_NOTIFICATIONS_SMTP=smtp_of(mailroom, timeout_seconds=2.5),
        POLICYTRACK_NOTIFICATIONS_RETRY_PERIOD="PT5S",
        POLICYTRACK_NOTIFICATIONS_DIGEST_TIME="00:00",
    ).start()
    task_id = await new_task(tasks)
    async with httpx.AsyncClient(base_url=notifications.url) as client:
        office = await subscribe(client, JILIN, address="office@jilin.example", task_id=task_id, digest=False)
        refusing = await subscribe(client, JILIN, address="refuse@jilin.example", task_id=task_id, digest=False)
        hanging = await subscribe(client, JILIN, address="hang@jilin.example", task_id=task_id, digest=False)
        bad = await client.post("/v1/mail-subscriptions", headers=JILIN, json={"address": "not an address"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.address", bad.text
    on_the_log = await read_to_end(kafka_settings, ALERTS)
    assert b"office@jilin.example" not in b"".join(r.value or b"" for r in on_the_log), "the log keeps addresses sealed"
    due = datetime.now(UTC) + timedelta(seconds=2)
    milestone_id = await milestone(tasks, task_id, due)

    # The first mail says the service has read the milestone: a digest made from now on holds it.
    await eventually(lambda: resolved(mailroom.to("office@jilin.example")), timeout=40, what="a first mail")
    async with httpx.AsyncClient(base_url=notifications.url) as client:
        digest = await subscribe(client, MEE, address="duty@mee.example", recipient="me", language="ko")
    await eventually(
        lambda: resolved(len(mailroom.to("office@jilin.example")) >= 3), timeout=40, what="three mails to the office"
    )
    mails = mailroom.to("office@jilin.example")
    assert len({m["Message-ID"] for m in mails}) == 3, "one mail an alert"
    kinds = ("临近截止", "今日到期", "已逾期")  # approaching, due today, overdue
    assert sorted(kind for m in mails for kind in kinds if kind in m["Subject"]) == sorted(kinds)
    due_today = next(m for m in mails if "今日到期" in m["Subject"])
    body = due_today.get_content()
    assert due_today["Content-Language"] == "zh-CN"
    assert f"{due.astimezone(BEIJING):%H:%M}" in body and "北京时间" in body, body
    assert milestone_id in body and "吉林省人民政府" in body

    # Each delivery is on the log, with the server's answer; the server that refuses and the one
    # that hangs are retried until the retry period ends, then recorded as failed.
    delivered = await eventually(lambda: _all_of(kafka_settings, office, 3), timeout=30, what="office receipts")
    assert {r.status_code for r in delivered} == {250}
    assert all(isinstance(r, c.AlertDelivered) for r in delivered)
    for failing, reason in ((refusing, "550"), (hanging, "Timeout")):
        failed = await eventually(partial(_all_of, kafka_settings, failing, 3), timeout=60, what=f"{reason} failures")
        assert all(isinstance(r, c.AlertDeliveryFailed) and r.attempts >= 2 for r in failed), failed
        assert all(reason in r.reason for r in failed), failed
    assert mailroom.refused >= 6 and mailroom.hung >= 6, "each failing alert was tried more than once"
    assert not mailroom.to("refuse@jilin.example") and not mailroom.to("hang@jilin.example")

    # The supporting department's reader gets a daily digest, in Korean, of what falls due.
    digests = await eventually(
        lambda: resolved([m for m in mailroom.to("duty@mee.example") if "일일 요약" in m["Subject"]]),
        timeout=30,
        what="the digest",
    )
    assert len(digests) == 1 and digests[0]["Content-Language"] == "ko"
    assert milestone_id in digests[0].get_content() and "베이징 시간" in digests[0].get_content()
    assert await receipts(kafka_settings, digest), "the digest's delivery is on the log too"


async def _all_of(settings: KafkaSettings, subscription_id: str, count: int) -> list[Any] | None:
    found = await receipts(settings, subscription_id)
    return found if len(found) >= count else None
