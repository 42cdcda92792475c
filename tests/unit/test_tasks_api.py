"""The tasks HTTP edge in process (in-memory log): hostile input is answered 4xx, never 5xx;
Idempotency-Key works as the IETF draft says; ids are unique across aggregate types."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from services.tasks.adapters.event_log import InMemoryEventLog
from shared.contract.codes import Department, Role, Severity
from tests.conftest import JILIN, MIIT, NDRC, SC, eventually
from tests.fakes import InProcessTasks, SlowLog, in_process_tasks

DUE = "2027-06-30T00:00:00Z"
JSON = {"content-type": "application/json"}


@pytest.fixture
async def tasks() -> AsyncIterator[InProcessTasks]:
    async with in_process_tasks() as service:
        yield service


async def seed(tasks: InProcessTasks) -> tuple[str, str]:
    plan = (await tasks.client.post("/v1/plans", headers=SC, json={"title": "Plan"})).json()["id"]
    task = await tasks.client.post(
        "/v1/tasks",
        headers=JILIN,
        json={
            "plan_id": plan,
            "title": "Hydrogen cluster",
            "field": "industry",
            "lead_department": "JILIN",
            "supporting_departments": ["MIIT"],
            "due": DUE,
        },
    )
    assert task.status_code == 201, task.text
    return plan, task.json()["id"]


@pytest.mark.parametrize("task_id", ["__main__", "%C2%80", "задача", "a" * 200, "-leading-dash", "x%20y"])
async def test_a_bad_id_in_the_path_is_422_naming_it(tasks: InProcessTasks, task_id: str) -> None:
    for path in (f"/v1/tasks/{task_id}/progress", f"/v1/tasks/{task_id}/milestones/m-1/met"):
        response = await tasks.client.post(path, headers=JILIN, json={"percent": 5})
        assert response.status_code == 422, (path, response.text)
        assert "path.task_id" in [e["field"] for e in response.json()["errors"]]
    response = await tasks.client.get(f"/v1/tasks/{task_id}", headers=JILIN)
    assert response.status_code == 422


@pytest.mark.parametrize("due", ["9999-12-31T23:30:00-01:00", "0001-01-01T00:00:00+01:00", "2201-01-01T00:00:00Z"])
async def test_times_outside_the_calendar_are_422(tasks: InProcessTasks, due: str) -> None:
    _, task = await seed(tasks)
    response = await tasks.client.post(f"/v1/tasks/{task}/milestones", headers=JILIN, json={"title": "m", "due": due})
    assert response.status_code == 422, response.text
    assert "body.due" in [e["field"] for e in response.json()["errors"]]


@pytest.mark.parametrize("if_match", ["9" * 5000, "yesterday", '"3', "-1", "0"])
async def test_a_malformed_if_match_is_422(tasks: InProcessTasks, if_match: str) -> None:
    _, task = await seed(tasks)
    response = await tasks.client.post(
        f"/v1/tasks/{task}/progress", headers={**JILIN, "If-Match": if_match}, json={"percent": 5}
    )
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "If-Match"


async def test_a_chunked_body_over_the_limit_is_413(tasks: InProcessTasks) -> None:
    _, task = await seed(tasks)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"percent": 5, "note": "'
        for _ in range(80):
            yield b"x" * 1024
        yield b'"}'

    response = await tasks.client.post(
        f"/v1/tasks/{task}/progress", headers={**JILIN, "content-type": "application/json"}, content=chunks()
    )
    assert response.status_code == 413, response.text
    small = await tasks.client.post(
        f"/v1/tasks/{task}/progress",
        headers={**JILIN, "content-type": "application/json"},
        content=_once(b'{"percent": 7}'),
    )
    assert small.status_code == 200, "a small chunked body still reaches the route"


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def test_a_cursor_that_was_not_issued_is_422(tasks: InProcessTasks) -> None:
    for cursor in ("bm9wZQ", "W10", "WyIxIiwyXQ", "x" * 600):
        response = await tasks.client.get("/v1/tasks", headers=JILIN, params={"cursor": cursor})
        assert response.status_code == 422, cursor


async def test_idempotency_key_for_another_request_is_422_even_on_another_route(tasks: InProcessTasks) -> None:
    _, task = await seed(tasks)
    key = {"Idempotency-Key": "report-2026-11-29"}
    first = await tasks.client.post(f"/v1/tasks/{task}/progress", headers={**JILIN, **key}, json={"percent": 10})
    again = await tasks.client.post(
        f"/v1/tasks/{task}/progress", headers={**JILIN, **key, **JSON}, content=b'{ "percent" : 10 }'
    )  # same request, other spacing
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    appended = len(tasks.events)
    other_body = await tasks.client.post(f"/v1/tasks/{task}/progress", headers={**JILIN, **key}, json={"percent": 20})
    other_route = await tasks.client.post(
        f"/v1/tasks/{task}/issues", headers={**JILIN, **key}, json={"title": "x", "severity": "low"}
    )
    for response in (other_body, other_route):
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert len(tasks.events) == appended, "a refused reuse appends nothing"


async def test_the_same_key_while_the_first_request_is_in_flight_is_409() -> None:
    log = SlowLog()
    log.release.set()
    async with in_process_tasks(log) as tasks:
        _, task = await seed(tasks)
        log.release.clear()
        key = {**JILIN, "Idempotency-Key": "in-flight"}
        first = asyncio.create_task(tasks.client.post(f"/v1/tasks/{task}/progress", headers=key, json={"percent": 30}))
        await asyncio.sleep(0.05)
        second = await tasks.client.post(f"/v1/tasks/{task}/progress", headers=key, json={"percent": 30})
        assert second.status_code == 409 and second.headers["retry-after"]
        log.release.set()
        assert (await first).status_code == 200
        third = await tasks.client.post(f"/v1/tasks/{task}/progress", headers=key, json={"percent": 30})
        assert third.status_code == 200 and third.json() == (await first).json()


async def submitted_after(log: SlowLog, before: int) -> bool | None:
    return log.submitted > before or None


async def test_a_retry_while_the_first_request_is_being_written_waits_for_its_answer() -> None:
    """Another instance can read the first request's events, and answer them, before the one
    that wrote them has its acknowledgement: a retry there must get that answer, not 409."""
    log = SlowLog()
    log.release.set()
    async with in_process_tasks(log) as tasks:
        _, task = await seed(tasks)
        log.release.clear()
        key, before = {**JILIN, "Idempotency-Key": "written-elsewhere"}, log.submitted
        first = asyncio.create_task(tasks.client.post(f"/v1/tasks/{task}/progress", headers=key, json={"percent": 30}))
        await eventually(lambda: submitted_after(log, before), what="the first request on its way to the log")
        asyncio.get_running_loop().call_later(0.3, log.release.set)
        retry = await tasks.client.post(f"/v1/tasks/{task}/progress", headers=key, json={"percent": 30})
        assert retry.status_code == 200, retry.text
        assert retry.json() == (await first).json()


async def test_answers_and_fingerprints_survive_a_restart() -> None:
    log = InMemoryEventLog()
    key = {**JILIN, "Idempotency-Key": "before-restart"}
    async with in_process_tasks(log) as tasks:
        _, task = await seed(tasks)
        first = await tasks.client.post(f"/v1/tasks/{task}/progress", headers=key, json={"percent": 40})
    async with in_process_tasks(log) as restarted:
        again = await restarted.client.post(f"/v1/tasks/{task}/progress", headers=key, json={"percent": 40})
        reused = await restarted.client.post(f"/v1/tasks/{task}/progress", headers=key, json={"percent": 41})
        assert (again.status_code, again.json()) == (200, first.json())
        assert reused.status_code == 422
        other_user = await restarted.client.post(
            f"/v1/tasks/{task}/progress", headers={**MIIT, "Idempotency-Key": "before-restart"}, json={"percent": 41}
        )
        assert other_user.status_code == 200, "keys are scoped to the user who sent them"


async def test_an_id_used_by_another_type_is_refused_and_nothing_is_appended(tasks: InProcessTasks) -> None:
    _plan, task = await seed(tasks)
    before = len(tasks.events)
    from services.tasks.domain import commands as cmd
    from shared.auth import Actor

    jilin = Actor(user="u-jilin", department=Department.JILIN, roles=frozenset({Role.IMPLEMENTER}))
    with pytest.raises(Exception, match="already the id of a Task"):
        await tasks.runtime.service.execute(
            cmd.ReportIssue(task_id=task, issue_id=task, title="x", severity=Severity.LOW), jilin
        )
    assert len(tasks.events) == before


async def test_an_event_that_cannot_be_applied_is_never_appended(
    tasks: InProcessTasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Evolve runs before the append: a rule that made an impossible event appends nothing, however often retried."""
    from services.tasks.application import service
    from shared.contract import catalog as c

    _, task = await seed(tasks)
    monkeypatch.setattr(
        service,
        "decide",
        lambda command, actor, world: [
            c.IssueReported(issue_id=task, task_id=task, title="collides", severity=Severity.LOW)
        ],
    )
    before = len(tasks.events)
    for _ in range(5):
        response = await tasks.client.post(f"/v1/tasks/{task}/progress", headers=JILIN, json={"percent": 50})
        assert response.status_code == 500
    assert len(tasks.events) == before


async def test_refusals_carry_the_status_of_their_kind(tasks: InProcessTasks) -> None:
    _, task = await seed(tasks)
    assert (await tasks.client.post(f"/v1/tasks/{task}/progress", headers=NDRC, json={"percent": 5})).status_code == 403
    assert (await tasks.client.post("/v1/tasks/nope/progress", headers=JILIN, json={"percent": 5})).status_code == 404
    assert (
        await tasks.client.post(f"/v1/tasks/{task}/progress", headers=JILIN, json={"percent": 101})
    ).status_code == 422


async def test_tasks_are_listed_by_health_under_either_filter_name(tasks: InProcessTasks) -> None:
    _, task = await seed(tasks)
    soon = (tasks.runtime.service.clock() + timedelta(days=2)).isoformat()
    await tasks.client.post(f"/v1/tasks/{task}/milestones", headers=JILIN, json={"title": "Gate", "due": soon})
    assert await tasks.runtime.service.assess() == 1
    for params in ({"health": "at_risk"}, {"status": "at_risk"}, {"status": "open", "health": "at_risk"}):
        listed = await tasks.client.get("/v1/tasks", headers=NDRC, params=params)
        assert [t["task_id"] for t in listed.json()["items"]] == [task], params
        assert listed.json()["items"][0]["health"] == "at_risk"
    for params in ({"health": "on_track"}, {"status": "completed"}):
        assert (await tasks.client.get("/v1/tasks", headers=NDRC, params=params)).json()["items"] == []
    both = await tasks.client.get("/v1/tasks", headers=NDRC, params={"status": "at_risk", "health": "late"})
    assert both.status_code == 422 and both.json()["errors"][0]["field"] == "health"


async def test_a_read_names_the_version_it_must_reflect(tasks: InProcessTasks) -> None:
    _, task_id = await seed(tasks)
    version = int((await tasks.client.get(f"/v1/tasks/{task_id}", headers=JILIN)).headers["etag"].strip('"'))

    reached = await tasks.client.get(f"/v1/tasks/{task_id}", headers=JILIN, params={"min_version": version})
    assert reached.status_code == 200 and reached.json()["version"] == version
    # One instance holds every write it answered: a version it does not have does not exist.
    ahead = await tasks.client.get(f"/v1/tasks/{task_id}", headers=JILIN, params={"min_version": version + 1})
    assert ahead.status_code == 412 and ahead.headers["content-type"].startswith("application/problem+json")


async def test_an_instance_that_follows_other_writers_waits_for_the_version_then_answers_503(
    tasks: InProcessTasks,
) -> None:
    from services.tasks.entrypoints.reads import reflection_wait

    tasks.app.dependency_overrides[reflection_wait] = lambda: 0.3
    _, task_id = await seed(tasks)
    version = int((await tasks.client.get(f"/v1/tasks/{task_id}", headers=JILIN)).headers["etag"].strip('"'))

    async def report_later() -> None:
        await asyncio.sleep(0.05)  # the write lands while the read waits (the scenario, not a readiness wait)
        await tasks.client.post(f"/v1/tasks/{task_id}/progress", headers=JILIN, json={"percent": 5})

    waited, _ = await asyncio.gather(
        tasks.client.get(f"/v1/tasks/{task_id}", headers=JILIN, params={"min_version": version + 1}), report_later()
    )
    assert waited.status_code == 200 and waited.json()["version"] == version + 1
    ahead = await tasks.client.get(f"/v1/tasks/{task_id}", headers=JILIN, params={"min_version": version + 5})
    assert ahead.status_code == 503 and ahead.headers["retry-after"] == "1"
