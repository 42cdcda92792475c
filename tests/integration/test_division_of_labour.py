"""The reply's whole division of labour against the real broker: support requests to State
Council departments, risk before lateness, evaluation cycles, and the NDRC's report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from policytrack.processes import ServiceProcess
from shared.contract import catalog as c
from shared.contract.codec import decode_record
from shared.contract.envelope import CloudEvent
from shared.contract.topics import AUDIT, EVENTS
from shared.settings import KafkaSettings
from tests.conftest import (
    JILIN,
    MEE,
    NAO,
    NDRC,
    SC,
    Receiver,
    ServiceFactory,
    caught_up,
    end_offsets,
    eventually,
    read_from,
    token,
)

MOFCOM = token("u-mofcom", "MOFCOM", "supporter")
GACC = token("u-gacc", "GACC", "supporter")
WATCHING = {"POLICYTRACK_TASKS_WATCH_INTERVAL_SECONDS": "0.5", "POLICYTRACK_TASKS_EVALUATION_MONTH_SECONDS": "2"}


async def plan_task_issue(client: httpx.AsyncClient, interval: int | None = None) -> dict[str, str]:
    plan = await client.post(
        "/v1/plans", headers=SC, json={"title": "Overall Plan", "evaluation_interval_months": interval}
    )
    task = await client.post(
        "/v1/tasks",
        headers=JILIN,
        json={
            "plan_id": plan.json()["id"],
            "title": "Trade facilitation",
            "field": "trade",
            "lead_department": "JILIN",
            "supporting_departments": ["MIIT"],
            "due": (datetime.now(UTC) + timedelta(days=300)).isoformat(),
        },
    )
    issue = await client.post(
        f"/v1/tasks/{task.json()['id']}/issues",
        headers=JILIN,
        json={"title": "Bonded zone stalled", "severity": "major"},
    )
    return {"plan": plan.json()["id"], "task": task.json()["id"], "issue": issue.json()["id"]}


async def events_since(kafka: KafkaSettings, starts: dict[str, Any], wanted: set[str]) -> list[CloudEvent[Any]]:
    records = await read_from(kafka, starts, until=lambda rs: False, timeout=1)
    return [e for e in map(decode_record, records) if isinstance(e, CloudEvent) and e.type in wanted]


async def test_support_is_asked_answered_declined_and_closed_each_by_its_own(
    service_factory: ServiceFactory, kafka_settings: KafkaSettings
) -> None:
    tasks = service_factory("tasks").start()
    starts = await end_offsets(kafka_settings, EVENTS)
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        ids = await plan_task_issue(client)
        by = (datetime.now(UTC) + timedelta(days=14)).isoformat()
        asked = await client.post(
            f"/v1/issues/{ids['issue']}/support-requests",
            headers=JILIN,
            json={"departments": ["MOFCOM", "GACC"], "need": "customs guidance", "by": by},
        )
        assert asked.status_code == 201, asked.text
        request = asked.json()["id"]
        path = f"/v1/support-requests/{request}"
        assert (await client.post(f"{path}/answer", headers=MEE, json={"answer": "we did it"})).status_code == 403
        assert (await client.post(f"{path}/acknowledge", headers=NAO)).status_code == 403
        assert (await client.post(f"{path}/close", headers=MOFCOM)).status_code == 403
        assert (await client.post(f"{path}/acknowledge", headers=MOFCOM)).status_code == 200
        assert (await client.post(f"{path}/acknowledge", headers=MOFCOM)).status_code == 409
        answer = await client.post(f"{path}/answer", headers=MOFCOM, json={"answer": "guidance issued"})
        assert answer.status_code == 200, answer.text
        declined = await client.post(f"{path}/decline", headers=GACC, json={"reason": "outside customs' remit"})
        assert declined.status_code == 200
        state = (await client.get(path, headers=GACC)).json()
        assert {a["department"]: a["state"] for a in state["answers"]} == {"MOFCOM": "answered", "GACC": "declined"}
        assert (await client.get(path, headers=MEE)).status_code == 404, "not asked, not on the task: not seen"
        assert (await client.post(f"{path}/close", headers=JILIN, json={"note": "zone approved"})).status_code == 200
        assert (await client.post(f"{path}/answer", headers=GACC, json={"answer": "late"})).status_code == 409
    events = await eventually(
        lambda: events_since(
            kafka_settings,
            starts,
            {
                c.SupportRequested.event_type,
                c.SupportAcknowledged.event_type,
                c.SupportAnswered.event_type,
                c.SupportDeclined.event_type,
                c.SupportRequestClosed.event_type,
            },
        ),
        what="support events on the log",
    )
    assert [(short(e), e.actordept) for e in events if e.subject == request] == [
        ("support_request.requested", "JILIN"),
        ("support_request.acknowledged", "MOFCOM"),
        ("support_request.answered", "MOFCOM"),
        ("support_request.declined", "GACC"),
        ("support_request.closed", "JILIN"),
    ]


async def subscribe(notifications: ServiceProcess, who: dict[str, str], receiver: Receiver, alert: str) -> str:
    """A webhook subscription to one type of alert; its signing secret."""
    async with httpx.AsyncClient(base_url=notifications.url, timeout=30) as client:
        body = {"webhook_url": receiver.url, "event_types": [alert]}
        made = await client.post("/v1/subscriptions", headers=who, json=body)
        assert made.status_code == 201, made.text
        secret: str = made.json()["secret"]
        return secret


def short(event: CloudEvent[Any]) -> str:
    return c.short_type(event.type)


async def test_a_task_going_at_risk_is_listed_and_alerted_once(
    service_factory: ServiceFactory, receiver: Receiver, kafka_settings: KafkaSettings
) -> None:
    tasks = service_factory("tasks", **WATCHING).start()
    secret = await subscribe(service_factory("notifications").start(), JILIN, receiver, "alert.at_risk")
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        ids = await plan_task_issue(client)
        soon = (datetime.now(UTC) + timedelta(days=3)).isoformat()
        await client.post(f"/v1/tasks/{ids['task']}/milestones", headers=JILIN, json={"title": "Window", "due": soon})

        async def at_risk() -> dict[str, Any] | None:
            listed = (await client.get("/v1/tasks", headers=NDRC, params={"health": "at_risk", "limit": 500})).json()
            return next((t for t in listed["items"] if t["task_id"] == ids["task"]), None)

        task = await eventually(at_risk, timeout=30, what="the task listed as at risk")
        assert "Window" in task["health_reason"]

    alerts = await eventually(lambda: alerted_for(receiver, secret, ids["task"]), timeout=30, what="the alert")
    assert alerts[0]["type"].endswith("alert.at_risk.v1") and set(alerts[0]["data"]["departments"]) == {"JILIN", "NDRC"}
    starts = await end_offsets(kafka_settings, EVENTS)
    tasks.restart()  # reassessed from scratch: the same health is not recorded, nor alerted, again
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        later = await plan_task_issue(client)
        await client.post(f"/v1/tasks/{later['task']}/milestones", headers=JILIN, json={"title": "Gate", "due": soon})
    changes = await eventually(
        lambda: health_changes_once(kafka_settings, starts, later["task"]), timeout=30, what="a reassessment ran"
    )
    # The worker's broker holds other tests' tasks too, whose health may change with time meanwhile.
    ours = [e.subject for e in changes if e.subject in (ids["task"], later["task"])]
    assert ours == [later["task"]], "the first task's health was recorded again"
    await eventually(lambda: alerted_for(receiver, secret, later["task"]), timeout=30, what="the later alert")
    assert len(await alerted_for(receiver, secret, ids["task"]) or []) == 1


async def health_changes_once(
    kafka: KafkaSettings, starts: dict[str, Any], task_id: str
) -> list[CloudEvent[Any]] | None:
    changes = await events_since(kafka, starts, {c.TaskHealthChanged.event_type})
    return changes if any(e.subject == task_id for e in changes) else None


async def alerted_for(receiver: Receiver, secret: str, task_id: str) -> list[Any] | None:
    return [e for _, e in receiver.alerts(secret) if e["data"].get("task_id") == task_id] or None


async def test_an_evaluation_falls_due_is_alerted_to_the_ndrc_and_a_plan_evaluation_answers_it(
    service_factory: ServiceFactory, receiver: Receiver, kafka_settings: KafkaSettings
) -> None:
    tasks = service_factory("tasks", **WATCHING).start()
    secret = await subscribe(service_factory("notifications").start(), NDRC, receiver, "alert.evaluation_due")
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        ids = await plan_task_issue(client, interval=1)

        async def due() -> dict[str, Any] | None:
            plan = (await client.get(f"/v1/plans/{ids['plan']}", headers=NDRC)).json()
            return plan if plan.get("evaluation_due") else None

        plan = await eventually(due, timeout=30, what="the plan's evaluation falling due")
        assert (
            await client.post(f"/v1/plans/{ids['plan']}/evaluations", headers=JILIN, json={"rating": "good"})
        ).status_code == 403
        evaluated = await client.post(
            f"/v1/plans/{ids['plan']}/evaluations", headers=NDRC, json={"rating": "fair", "findings": "behind on trade"}
        )
        assert evaluated.status_code == 201, evaluated.text

    async def alerted() -> list[Any] | None:
        alerts = [e for _, e in receiver.alerts(secret) if e["data"].get("plan_id") == ids["plan"]]
        return alerts or None

    alerts = await eventually(alerted, timeout=30, what="the evaluation-due alert delivered to the NDRC")
    assert alerts[0]["data"]["due"] == plan["evaluation_due"] and alerts[0]["data"]["departments"] == ["NDRC"]


@pytest.fixture
def audit(service_factory: ServiceFactory) -> ServiceProcess:
    return service_factory("audit").start()


async def test_the_ndrc_reports_from_the_trail_and_the_trail_proves_what_it_sent(
    service_factory: ServiceFactory, audit: ServiceProcess, kafka_settings: KafkaSettings
) -> None:
    tasks = service_factory("tasks").start()
    started = datetime.now(UTC)
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        ids = await plan_task_issue(client)
        await client.post(f"/v1/issues/{ids['issue']}/escalate", headers=NDRC, json={"reason": "major"})
        await client.post(
            f"/v1/issues/{ids['issue']}/support-requests",
            headers=JILIN,
            json={"departments": ["MOFCOM"], "need": "guidance", "by": (started + timedelta(days=7)).isoformat()},
        )
        await client.post(f"/v1/tasks/{ids['task']}/evaluations", headers=NDRC, json={"rating": "poor"})
    await caught_up(audit)
    period = {"from": started.isoformat(), "to": datetime.now(UTC).isoformat()}
    async with httpx.AsyncClient(base_url=audit.url, timeout=120) as client:
        assert (await client.get("/v1/audit/reports/implementation", headers=JILIN, params=period)).status_code == 403
        as_json = await client.get("/v1/audit/reports/implementation", headers=NAO, params=period)
        as_markdown = await client.get(
            "/v1/audit/reports/implementation", headers=SC, params={**period, "format": "md"}
        )
        assert as_json.status_code == as_markdown.status_code == 200
        report = as_json.json()
        issue = next(i for i in report["major_issues"] if i["issue_id"] == ids["issue"])
        assert (
            issue["status"] == "escalated" and issue["support_requests"][0]["departments"][0]["department"] == "MOFCOM"
        )
        assert ids["task"] in {e["task_id"] for e in report["evaluations"]}
        assert issue["title"] in as_markdown.text and f"{report['fields']['trade']['tasks']} |" in as_markdown.text
        for someone_else in (JILIN, SC, NAO, MOFCOM, token("u-ndrc-clerk", "NDRC", "implementer")):
            refused = await client.post("/v1/audit/reports/implementation/submit", headers=someone_else, json=period)
            assert refused.status_code == 403, "only the NDRC's supervisor submits the report"
        starts = await end_offsets(kafka_settings, AUDIT)
        submitted = await client.post("/v1/audit/reports/implementation/submit", headers=NDRC, json=period)
        assert submitted.status_code == 201, submitted.text
        assert submitted.json()["sha256"] == as_json.headers["digest"].removeprefix("sha-256=")
    events = await eventually(
        lambda: events_since(kafka_settings, starts, {c.ReportSubmitted.event_type}), what="report.submitted on the log"
    )
    assert (events[0].actor, events[0].actordept, events[0].data.sha256) == (
        "u-ndrc",
        "NDRC",
        submitted.json()["sha256"],
    )


async def test_a_retried_submission_under_one_idempotency_key_is_recorded_once(
    audit: ServiceProcess, kafka_settings: KafkaSettings
) -> None:
    """Issue 28, item 6: a POST retried after a lost answer recorded a second submission."""
    await caught_up(audit)
    now = datetime.now(UTC)
    period = {"from": (now - timedelta(days=30)).isoformat(), "to": now.isoformat()}
    keyed = {**NDRC, "Idempotency-Key": f"report-{now.timestamp()}"}
    starts = await end_offsets(kafka_settings, AUDIT)
    async with httpx.AsyncClient(base_url=audit.url, timeout=120) as client:
        first = await client.post("/v1/audit/reports/implementation/submit", headers=keyed, json=period)
        again = await client.post("/v1/audit/reports/implementation/submit", headers=keyed, json=period)
        other = {**period, "from": (now - timedelta(days=60)).isoformat()}
        reused = await client.post("/v1/audit/reports/implementation/submit", headers=keyed, json=other)
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert reused.status_code == 422 and reused.json()["errors"][0]["field"] == "Idempotency-Key", reused.text

    audit.restart()  # the key's first answer is found on the trail, not only in the process's memory
    await caught_up(audit)
    async with httpx.AsyncClient(base_url=audit.url, timeout=120) as client:
        after = await client.post("/v1/audit/reports/implementation/submit", headers=keyed, json=period)
        unkeyed = [
            await client.post("/v1/audit/reports/implementation/submit", headers=NDRC, json=period) for _ in range(2)
        ]
    assert after.status_code == 201 and after.json() == first.json(), after.text
    assert unkeyed[0].json()["id"] != unkeyed[1].json()["id"], "without a key, each POST is a submission"

    async def submitted() -> list[str] | None:
        events = await events_since(kafka_settings, starts, {c.ReportSubmitted.event_type})
        return [e.data.report_id for e in events] if len(events) >= 3 else None

    ids = await eventually(submitted, what="the submissions on the log")
    assert ids.count(first.json()["id"]) == 1 and len(ids) == 3, ids
