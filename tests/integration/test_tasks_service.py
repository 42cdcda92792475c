"""The tasks service as a process against the real broker: what departmental systems rely on."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from policytrack.processes import ServiceProcess
from shared.contract.topics import EVENTS
from shared.settings import KafkaSettings
from tests.conftest import JILIN, MIIT, MOST, NAO, NDRC, SC, ServiceFactory, end_offsets, records_since

DUE = "2027-06-30T18:00:00+08:00"


@pytest.fixture
def tasks(service_factory: ServiceFactory) -> ServiceProcess:
    return service_factory("tasks").start()


@pytest.fixture(scope="module")
def tasks_refusing(module_services: ServiceFactory) -> ServiceProcess:
    """One service for the cases of bad input: each is refused and changes nothing."""
    return module_services("tasks").start()


class LogWatch:
    """Counts the events appended to policy.events since it was made."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.starts: dict[str, Any] = {}

    async def mark(self) -> LogWatch:
        self.starts = await end_offsets(self.settings, EVENTS)
        return self

    async def appended(self) -> list[Any]:
        return await records_since(self.settings, EVENTS, self.starts)


async def watch(settings: KafkaSettings) -> LogWatch:
    return await LogWatch(settings).mark()


async def seed(client: httpx.AsyncClient) -> tuple[str, str]:
    plan = await client.post("/v1/plans", json={"title": "Overall Plan"}, headers=SC)
    assert plan.status_code == 201, plan.text
    task = await client.post(
        "/v1/tasks",
        headers=JILIN,
        json={
            "plan_id": plan.json()["id"],
            "title": "Hydrogen vehicle cluster",
            "field": "industry",
            "lead_department": "JILIN",
            "supporting_departments": ["MIIT"],
            "due": DUE,
        },
    )
    assert task.status_code == 201, task.text
    return plan.json()["id"], task.json()["id"]


def client_for(service: ServiceProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=service.url, timeout=30)


async def test_a_whole_task_life_cycle(tasks: ServiceProcess) -> None:
    async with client_for(tasks) as client:
        _plan_id, task_id = await seed(client)
        created = (await client.get(f"/v1/tasks/{task_id}", headers=MIIT)).json()
        assert created["due"] == "2027-06-30T10:00:00Z", "times are stored in UTC"
        assert (created["lead_department"], created["supporting_departments"]) == ("JILIN", ["MIIT"])

        milestone = await client.post(
            f"/v1/tasks/{task_id}/milestones",
            headers=MIIT,
            json={"title": "Land allocated", "due": "2027-01-31T00:00:00Z"},
        )
        assert milestone.status_code == 201 and milestone.json()["task_id"] == task_id
        milestone_id = milestone.json()["id"]
        assert (
            await client.post(
                f"/v1/tasks/{task_id}/progress", headers=JILIN, json={"percent": 40, "note": "site prepared"}
            )
        ).status_code == 200
        assert (
            await client.post(f"/v1/tasks/{task_id}/milestones/{milestone_id}/met", headers=JILIN, json={})
        ).status_code == 200

        issue = await client.post(
            f"/v1/tasks/{task_id}/issues",
            headers=JILIN,
            json={"title": "Customs delays", "severity": "major", "detail": "bonded zone"},
        )
        assert issue.status_code == 201
        escalated = await client.post(
            f"/v1/issues/{issue.json()['id']}/escalate", headers=NDRC, json={"reason": "needs a State Council decision"}
        )
        assert escalated.status_code == 200
        issue_state = (await client.get(f"/v1/issues/{issue.json()['id']}", headers=NDRC)).json()
        assert (issue_state["status"], issue_state["escalated_to"]) == ("escalated", "SC")

        approval = await client.post(
            f"/v1/tasks/{task_id}/approvals",
            headers=JILIN,
            json={"kind": "major_project", "title": "Park phase 2", "detail": "RMB 12bn"},
        )
        assert approval.status_code == 201
        decision = await client.post(
            f"/v1/approvals/{approval.json()['id']}/decision",
            headers=SC,
            json={"granted": True, "reason": "in line with the plan"},
        )
        assert decision.status_code == 200
        evaluation = await client.post(
            f"/v1/tasks/{task_id}/evaluations", headers=NDRC, json={"rating": "good", "findings": "on schedule"}
        )
        assert evaluation.status_code == 201
        completed = await client.post(f"/v1/tasks/{task_id}/complete", headers=JILIN, json={"note": "opened"})
        assert completed.status_code == 200, completed.text

        final = await client.get(f"/v1/tasks/{task_id}", headers=NAO)
        assert final.json()["status"] == "completed" and final.json()["percent"] == 100
        assert final.headers["etag"] == f'"{final.json()["version"]}"'
        history = (await client.get(f"/v1/tasks/{task_id}/events", headers=NAO)).json()
        assert [e["type"].removeprefix("org.policytrack.").removesuffix(".v1") for e in history] == [
            "task.created",
            "task.assigned",
            "milestone.scheduled",
            "task.progress_reported",
            "milestone.met",
            "issue.reported",
            "issue.escalated",
            "approval.requested",
            "approval.granted",
            "evaluation.recorded",
            "task.completed",
        ]
        actors = {
            e["type"].split(".")[2] + "." + e["type"].split(".")[3]: (e["actor"], e["actordept"]) for e in history
        }
        assert actors["milestone.scheduled"] == ("u-miit", "MIIT"), "the actor comes from the token"
        assert actors["issue.escalated"] == ("u-ndrc", "NDRC")
        assert actors["approval.granted"] == ("u-sc", "SC")
        listed = (
            await client.get("/v1/tasks", params={"department": "MIIT", "status": "completed"}, headers=NAO)
        ).json()
        assert task_id in [t["task_id"] for t in listed["items"]]


FORBIDDEN = [
    ("plan by JILIN", "post", "/v1/plans", JILIN, {"title": "x"}, 403),
    ("task by MIIT", "post", "/v1/tasks", MIIT, "TASK", 403),
    ("milestone by MOST", "post", "/v1/tasks/{task}/milestones", MOST, {"title": "x", "due": DUE}, 403),
    ("progress by NDRC", "post", "/v1/tasks/{task}/progress", NDRC, {"percent": 5}, 403),
    ("progress by auditor", "post", "/v1/tasks/{task}/progress", NAO, {"percent": 5}, 403),
    ("issue by SC", "post", "/v1/tasks/{task}/issues", SC, {"title": "x", "severity": "low"}, 403),
    ("approval by MOST", "post", "/v1/tasks/{task}/approvals", MOST, {"kind": "policy", "title": "x"}, 403),
    ("evaluation by JILIN", "post", "/v1/tasks/{task}/evaluations", JILIN, {"rating": "good"}, 403),
    ("escalation by JILIN", "post", "/v1/issues/{issue}/escalate", JILIN, {}, 403),
    ("decision by NDRC", "post", "/v1/approvals/{approval}/decision", NDRC, {"granted": True}, 403),
    ("completion by MIIT", "post", "/v1/tasks/{task}/complete", MIIT, {}, 403),
    ("completion with unmet milestone", "post", "/v1/tasks/{task}/complete", JILIN, {}, 409),
    ("milestone met twice", "post", "/v1/tasks/{task}/milestones/{met}/met", JILIN, {}, 409),
    ("second decision", "post", "/v1/approvals/{decided}/decision", SC, {"granted": False}, 409),
    ("second escalation", "post", "/v1/issues/{escalated}/escalate", NDRC, {}, 409),
    ("write to completed task", "post", "/v1/tasks/{done}/progress", JILIN, {"percent": 5}, 409),
    ("progress back without note", "post", "/v1/tasks/{task}/progress", JILIN, {"percent": 1}, 422),
    ("unknown task", "post", "/v1/tasks/nope/progress", JILIN, {"percent": 5}, 404),
]


async def test_every_forbidden_action_is_refused_and_appends_nothing(
    tasks: ServiceProcess, kafka_settings: KafkaSettings
) -> None:
    async with client_for(tasks) as client:
        plan_id, task_id = await seed(client)
        _, done_id = await seed(client)
        assert (await client.post(f"/v1/tasks/{done_id}/complete", headers=JILIN)).status_code == 200
        ids = {"task": task_id, "done": done_id}
        ids["met"] = (
            await client.post(f"/v1/tasks/{task_id}/milestones", headers=JILIN, json={"title": "m", "due": DUE})
        ).json()["id"]
        await client.post(f"/v1/tasks/{task_id}/milestones/{ids['met']}/met", headers=JILIN)
        await client.post(f"/v1/tasks/{task_id}/milestones", headers=JILIN, json={"title": "open", "due": DUE})
        await client.post(f"/v1/tasks/{task_id}/progress", headers=JILIN, json={"percent": 30})
        ids["issue"] = (
            await client.post(f"/v1/tasks/{task_id}/issues", headers=JILIN, json={"title": "i", "severity": "high"})
        ).json()["id"]
        ids["escalated"] = (
            await client.post(f"/v1/tasks/{task_id}/issues", headers=JILIN, json={"title": "j", "severity": "major"})
        ).json()["id"]
        await client.post(f"/v1/issues/{ids['escalated']}/escalate", headers=NDRC)
        ids["approval"] = (
            await client.post(f"/v1/tasks/{task_id}/approvals", headers=JILIN, json={"kind": "policy", "title": "a"})
        ).json()["id"]
        ids["decided"] = (
            await client.post(f"/v1/tasks/{task_id}/approvals", headers=JILIN, json={"kind": "policy", "title": "b"})
        ).json()["id"]
        await client.post(f"/v1/approvals/{ids['decided']}/decision", headers=SC, json={"granted": True})
        task_body = {"plan_id": plan_id, "title": "x", "field": "trade", "lead_department": "MOFCOM", "due": DUE}

        log = await watch(kafka_settings)
        for name, method, path, headers, body, status in FORBIDDEN:
            response = await client.request(
                method, path.format(**ids), headers=headers, json=task_body if body == "TASK" else body
            )
            assert response.status_code == status, f"{name}: {response.status_code} {response.text}"
            assert response.headers["content-type"] == "application/problem+json", name
            assert response.json()["status"] == status
        assert await log.appended() == [], "a refused request appended something"


async def test_two_concurrent_writes_with_the_same_if_match_exactly_one_wins(tasks: ServiceProcess) -> None:
    async with client_for(tasks) as client:
        _, task_id = await seed(client)
        etag = (await client.get(f"/v1/tasks/{task_id}", headers=JILIN)).headers["etag"]
        responses = await asyncio.gather(
            *(
                client.post(
                    f"/v1/tasks/{task_id}/progress",
                    headers={**JILIN, "If-Match": etag},
                    json={"percent": 10 + n, "note": f"writer {n}"},
                )
                for n in range(8)
            )
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] + [412] * 7
        bare_stale = await client.post(
            f"/v1/tasks/{task_id}/progress", headers={**JILIN, "If-Match": "2"}, json={"percent": 90}
        )
        assert bare_stale.status_code == 412 and bare_stale.json()["current_version"] == 3


async def test_concurrent_commands_on_one_task_each_land_once_in_version_order(
    tasks: ServiceProcess, kafka_settings: KafkaSettings
) -> None:
    callers = 32
    async with client_for(tasks) as client:
        _, task_id = await seed(client)
        version = (await client.get(f"/v1/tasks/{task_id}", headers=JILIN)).json()["version"]
        log = await watch(kafka_settings)
        responses = await asyncio.gather(
            *(
                client.post(f"/v1/tasks/{task_id}/progress", headers=JILIN, json={"percent": 50, "note": f"caller {n}"})
                for n in range(callers)
            )
        )
        assert [r.status_code for r in responses] == [200] * callers
        answered = {r.json()["version"] for r in responses}
        assert answered == set(range(version + 1, version + callers + 1)), "one version each, no gap"
        on_log = sorted((r for r in await log.appended() if r.key == task_id.encode()), key=lambda r: r.offset)
        versions = [int(dict(r.headers)["ce_aggregateversion"]) for r in on_log]
        assert versions == sorted(answered), "each command once, in version order on its partition"
        assert (await client.get(f"/v1/tasks/{task_id}", headers=JILIN)).json()["version"] == version + callers


async def test_an_idempotent_retry_appends_once_before_and_after_a_restart(
    tasks: ServiceProcess, kafka_settings: KafkaSettings
) -> None:
    key = {"Idempotency-Key": f"retry-{uuid.uuid4()}"}
    async with client_for(tasks) as client:
        _, task_id = await seed(client)
        log = await watch(kafka_settings)
        first = await client.post(
            f"/v1/tasks/{task_id}/issues",
            headers={**JILIN, **key},
            json={"title": "Power supply", "severity": "medium"},
        )
        again = await client.post(
            f"/v1/tasks/{task_id}/issues",
            headers={**JILIN, **key},
            json={"title": "Power supply", "severity": "medium"},
        )
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        assert len(await log.appended()) == 1
    tasks.restart()
    async with client_for(tasks) as client:
        after_restart = await client.post(
            f"/v1/tasks/{task_id}/issues",
            headers={**JILIN, **key},
            json={"title": "Power supply", "severity": "medium"},
        )
        assert (after_restart.status_code, after_restart.json()) == (201, first.json())
        assert len(await log.appended()) == 1
        other_user = await client.post(
            f"/v1/tasks/{task_id}/issues", headers={**MIIT, **key}, json={"title": "Power supply", "severity": "medium"}
        )
        assert other_user.json()["id"] != first.json()["id"], "keys are scoped to the user who sent them"
        reused = await client.post(
            f"/v1/tasks/{task_id}/issues",
            headers={**JILIN, **key},
            json={"title": "Water supply", "severity": "medium"},
        )
        assert reused.status_code == 422, "the request's fingerprint travels with its events and survives restarts"
        assert len(await log.appended()) == 2


async def test_after_a_restart_every_get_answers_the_same(tasks: ServiceProcess) -> None:
    async with client_for(tasks) as client:
        _, task_id = await seed(client)
        await client.post(f"/v1/tasks/{task_id}/milestones", headers=JILIN, json={"title": "m", "due": DUE})
        await client.post(f"/v1/tasks/{task_id}/progress", headers=MIIT, json={"percent": 20})
        issue = (
            await client.post(f"/v1/tasks/{task_id}/issues", headers=JILIN, json={"title": "i", "severity": "low"})
        ).json()["id"]
        paths = [
            f"/v1/tasks/{task_id}",
            f"/v1/tasks/{task_id}/events",
            f"/v1/issues/{issue}",
            "/v1/tasks?limit=500",
            "/v1/tasks?department=MIIT&limit=3",
            "/v1/tasks?overdue=false&limit=500",
        ]
        before = {path: (await client.get(path, headers=NAO)) for path in paths}
    tasks.restart()
    async with client_for(tasks) as client:
        for path, earlier in before.items():
            now = await client.get(path, headers=NAO)
            assert (now.status_code, now.json()) == (earlier.status_code, earlier.json()), path
            assert now.headers.get("etag") == earlier.headers.get("etag"), path


async def test_a_zombie_instance_is_fenced_and_can_no_longer_append(
    service_factory: ServiceFactory, kafka_settings: KafkaSettings
) -> None:
    shared_id = {"POLICYTRACK_TASKS_TRANSACTIONAL_ID": f"policytrack-tasks-fencing-{uuid.uuid4().hex[:8]}"}
    old = service_factory("tasks", **shared_id).start()
    async with client_for(old) as client:
        _, task_id = await seed(client)
    new = service_factory("tasks", **shared_id).start()
    log = await watch(kafka_settings)
    async with client_for(old) as zombie:
        refused = await zombie.post(f"/v1/tasks/{task_id}/progress", headers=JILIN, json={"percent": 50})
        assert refused.status_code == 503, refused.text
        assert (await zombie.get("/readyz")).json()["fenced"] is True
    assert await log.appended() == []
    async with client_for(new) as client:
        accepted = await client.post(f"/v1/tasks/{task_id}/progress", headers=JILIN, json={"percent": 50})
        assert accepted.status_code == 200, "the new instance rebuilt the task and writes it"


@pytest.mark.parametrize(
    ("name", "content", "headers", "status", "field"),
    [
        ("malformed JSON", b'{"title": ', {}, 422, "body"),
        ("wrong type", b'{"percent": "lots"}', {}, 422, "body.percent"),
        ("unknown field", b'{"percent": 5, "who": "u-other"}', {}, 422, "body.who"),
        ("over 100", b'{"percent": 101}', {}, 422, "body.percent"),
        ("no token", b'{"percent": 5}', {"Authorization": ""}, 401, None),
        ("bad token", b'{"percent": 5}', {"Authorization": "Bearer not.a.token"}, 401, None),
        ("too large", b'{"percent": 5, "note": "' + b"x" * 70_000 + b'"}', {}, 413, None),
        ("bad If-Match", b'{"percent": 5}', {"If-Match": "yesterday"}, 422, "If-Match"),
    ],
)
async def test_bad_input_gets_a_problem_naming_the_field_and_appends_nothing(
    tasks_refusing: ServiceProcess,
    kafka_settings: KafkaSettings,
    name: str,
    content: bytes,
    headers: dict[str, Any],
    status: int,
    field: str | None,
) -> None:
    async with client_for(tasks_refusing) as client:
        _, task_id = await seed(client)
        log = await watch(kafka_settings)
        response = await client.post(
            f"/v1/tasks/{task_id}/progress",
            content=content,
            headers={**JILIN, "content-type": "application/json", **headers},
        )
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        if field:
            assert field in [e["field"] for e in response.json()["errors"]]
        assert await log.appended() == []


async def test_unknown_department_and_field_of_cooperation_are_named(tasks: ServiceProcess) -> None:
    async with client_for(tasks) as client:
        plan_id, _ = await seed(client)
        body = {"plan_id": plan_id, "title": "x", "field": "tourism", "lead_department": "MARS", "due": DUE}
        response = await client.post("/v1/tasks", headers=JILIN, json=body)
        assert response.status_code == 422
        assert {"body.field", "body.lead_department"} <= {e["field"] for e in response.json()["errors"]}


def test_the_development_key_is_refused_outside_dev(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.tasks"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "POLICYTRACK_ENV": "prod",
            "POLICYTRACK_AUTH_DEV_SIGNING_KEY": "policytrack-development-signing-key-not-for-production",
        },
    )
    assert result.returncode == 2
    assert "development signing key is only allowed with POLICYTRACK_ENV=dev" in result.stderr
