"""Acting from the dashboard, in process against a stand-in of the tasks service that records
what it is sent: the forms the service offers, in Chinese by default; a posted form becomes the
person's command with the form's If-Match and Idempotency-Key; a refusal comes back beside the
field; a form filled against an older version says so (issue 29)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from shared.contract.catalog import TaskHealthChanged
from shared.contract.codec import to_structured
from shared.contract.codes import Department, TaskHealth
from shared.contract.envelope import new_event
from tests.unit.test_dashboard_edge import TASK, form_token, sign_in, web_app

NOW = datetime.now(UTC)
ACTIONS = [
    {
        "command": "report_progress",
        "method": "POST",
        "path": "/v1/tasks/task-hydrogen/progress",
        "given": {},
        "key": "task-hydrogen",
        "if_match": 3,
        "task_id": "task-hydrogen",
        "about": "Hydrogen vehicle cluster",
    },
    {
        "command": "request_support",
        "method": "POST",
        "path": "/v1/issues/issue-7/support-requests",
        "given": {},
        "key": "issue-7",
        "if_match": 1,
        "task_id": "task-hydrogen",
        "about": "Hydrogen permits",
    },
]


PLAN_ID = "plan-zone"
PLAN_ACTION = {
    "command": "create_task",
    "method": "POST",
    "path": "/v1/tasks",
    "given": {"plan_id": PLAN_ID},
    "key": "plan-zone",
    "if_match": None,
    "task_id": None,
    "about": "Overall Plan",
}


class TasksStandIn:
    """Answers the reads the task page makes and records each command; ``answer`` is what the
    next command gets."""

    def __init__(self) -> None:
        self.sent: list[httpx.Request] = []
        self.answer = httpx.Response(201, json={"id": "task-hydrogen", "version": 4})
        self.trail: list[dict[str, Any]] = []
        self.trail_behind_by = 0
        """How many more reads of the trail come back without ``trail``: the audit service lags."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST":
            self.sent.append(request)
            return self.answer
        if path == "/v1/tasks/task-hydrogen":
            return httpx.Response(200, json=TASK)
        if path == "/v1/tasks/task-hydrogen/actions":
            return httpx.Response(200, json={"items": ACTIONS})
        if path == "/v1/actions":
            return httpx.Response(200, json={"items": [PLAN_ACTION]})
        if path == "/v1/todo":
            duty = {
                "kind": "report_progress",
                "task_id": "task-hydrogen",
                "title": TASK["title"],
                "due": (NOW - timedelta(days=2)).isoformat(),
                "overdue": True,
                "action": ACTIONS[0],
            }
            return httpx.Response(200, json={"department": "JILIN", "items": [duty]})
        if path == "/v1/audit/events":
            self.trail_behind_by -= 1
            items = self.trail if self.trail_behind_by < 0 else []
            return httpx.Response(200, json={"items": items, "next_cursor": None})
        return httpx.Response(404, json={"status": 404, "detail": "no such thing"})


def health_changed_at(time: datetime, version: int | None = None, subject: str = "task-hydrogen") -> dict[str, Any]:
    """The trail's entry of a change of the task's health that made ``version`` of ``subject`` (by
    default the task's current version, ``TASK``), as the audit API gives it: the attributes as
    their headers hold them (text), the data as JSON."""
    change = TaskHealthChanged(task_id="task-hydrogen", health=TaskHealth.AT_RISK, previous=TaskHealth.ON_TRACK)
    version = int(str(TASK["version"])) if version is None else version
    event = new_event(change, actor="health-watch", actordept=Department.NDRC, aggregateversion=version, time=time)
    event = event.model_copy(update={"subject": subject})
    structured = orjson.loads(to_structured(event))
    attributes = {name: str(value) for name, value in structured.items() if name != "data"}
    return {"seq": 9, "event": {**attributes, "datacontenttype": "application/json", "data": structured["data"]}}


@pytest.fixture
def tasks() -> TasksStandIn:
    return TasksStandIn()


@pytest.fixture
async def dashboard(tasks: TasksStandIn) -> AsyncIterator[httpx.AsyncClient]:
    async with web_app(answer=tasks) as client:
        await sign_in(client, "JILIN", "implementer")
        yield client


def hidden(page: str, anchor: str, name: str) -> str:
    form = page.split(f'id="{anchor}"', 1)[1].split("</details>", 1)[0]
    found = re.search(rf'name="{name}" value="([^"]*)"', form)
    assert found, f"no {name} in {anchor}"
    return found.group(1)


def posted(page: str, anchor: str, **fields: Any) -> dict[str, Any]:
    names = ("command", "path", "key", "if_match", "idempotency_key", "back")
    return {"csrf": form_token_of(page), **{n: hidden(page, anchor, n) for n in names}, **fields}


def form_token_of(page: str) -> str:
    return form_token(httpx.Response(200, text=page))


async def test_the_task_page_offers_in_chinese_the_forms_the_service_allows(dashboard: httpx.AsyncClient) -> None:
    page = await dashboard.get("/tasks/task-hydrogen")
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text and page.headers["content-language"] == "zh-CN"
    assert "报告进度" in page.text and "请求支持" in page.text
    assert "吉林省人民政府" in page.text, "departments by their names"
    assert "complete_task" not in page.text, "a form the service did not offer is not shown"
    assert 'id="todo-count">1<' in page.text, "the to-do count in the navigation"


async def test_a_form_becomes_the_persons_command_once_however_often_it_is_sent(
    dashboard: httpx.AsyncClient, tasks: TasksStandIn
) -> None:
    page = (await dashboard.get("/tasks/task-hydrogen")).text
    form = posted(page, "act-report_progress-task-hydrogen", percent="45", note="厂房封顶")
    first = await dashboard.post("/tasks/task-hydrogen/act", data=form)
    again = await dashboard.post("/tasks/task-hydrogen/act", data=form)  # a double click
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == "/tasks/task-hydrogen?done=report_progress#act-report_progress-task-hydrogen"
    sent = tasks.sent[0]
    assert sent.url.path == "/v1/tasks/task-hydrogen/progress"
    assert orjson.loads(sent.content) == {"percent": 45, "note": "厂房封顶"}
    assert sent.headers["if-match"] == '"3"' and sent.headers["authorization"].startswith("Bearer ")
    keys = {request.headers["idempotency-key"] for request in tasks.sent}
    assert keys == {form["idempotency_key"]}, "both clicks carry the form's one key: the service records one act"


async def test_a_date_is_a_day_in_beijing_and_departments_are_picked(
    dashboard: httpx.AsyncClient, tasks: TasksStandIn
) -> None:
    page = (await dashboard.get("/tasks/task-hydrogen")).text
    form = posted(page, "act-request_support-issue-7", need="海关监管规则", by="2026-12-31")
    form["departments"] = ["GACC", "MOFCOM"]
    assert (await dashboard.post("/tasks/task-hydrogen/act", data=form)).status_code == 303
    body = orjson.loads(tasks.sent[0].content)
    assert body == {"departments": ["GACC", "MOFCOM"], "need": "海关监管规则", "by": "2026-12-31T23:59:59+08:00"}


async def test_the_services_refusal_is_shown_beside_its_field_and_the_input_kept(
    dashboard: httpx.AsyncClient, tasks: TasksStandIn
) -> None:
    tasks.answer = httpx.Response(
        422,
        json={"status": 422, "detail": "percent: too big", "errors": [{"field": "percent", "message": "至多 100"}]},
    )
    page = (await dashboard.get("/tasks/task-hydrogen")).text
    answer = await dashboard.post(
        "/tasks/task-hydrogen/act", data=posted(page, "act-report_progress-task-hydrogen", percent="140")
    )
    assert answer.status_code == 422
    assert 'id="act-report_progress-task-hydrogen-percent-error">至多 100<' in answer.text
    assert 'aria-invalid="true"' in answer.text and 'value="140"' in answer.text
    assert '<details class="act" id="act-report_progress-task-hydrogen" data-command="report_progress" open>' in (
        answer.text
    )


async def test_a_field_the_dashboard_can_read_itself_is_refused_before_anything_is_sent(
    dashboard: httpx.AsyncClient, tasks: TasksStandIn
) -> None:
    page = (await dashboard.get("/tasks/task-hydrogen")).text
    answer = await dashboard.post(
        "/tasks/task-hydrogen/act", data=posted(page, "act-report_progress-task-hydrogen", percent="四十")
    )
    assert answer.status_code == 422 and "请填写整数。" in answer.text
    assert tasks.sent == []


async def test_a_form_filled_against_an_older_version_says_so_and_can_be_sent_again(
    dashboard: httpx.AsyncClient, tasks: TasksStandIn
) -> None:
    tasks.answer = httpx.Response(412, json={"status": 412, "detail": "the task is at version 3"})
    tasks.trail = [health_changed_at(NOW)]
    page = (await dashboard.get("/tasks/task-hydrogen")).text
    answer = await dashboard.post(
        "/tasks/task-hydrogen/act", data=posted(page, "act-report_progress-task-hydrogen", percent="50")
    )
    assert answer.status_code == 409
    assert 'id="changed"' in answer.text and "他人已作了修改" in answer.text
    assert 'value="50"' in answer.text, "what the person typed is kept"
    again = hidden(answer.text, "act-report_progress-task-hydrogen", "idempotency_key")
    assert again != tasks.sent[0].headers["idempotency-key"], "sending it again is a new act"


async def test_a_form_may_name_only_a_command_route_of_the_tasks_service(
    dashboard: httpx.AsyncClient, tasks: TasksStandIn
) -> None:
    page = (await dashboard.get("/tasks/task-hydrogen")).text
    form = posted(page, "act-report_progress-task-hydrogen", percent="45")
    form["path"] = "/v1/audit/reports/implementation/submit"
    answer = await dashboard.post("/tasks/task-hydrogen/act", data=form)
    assert answer.status_code == 400 and tasks.sent == []


async def test_the_to_do_list_links_to_the_form(dashboard: httpx.AsyncClient) -> None:
    page = await dashboard.get("/todo")
    assert page.status_code == 200
    assert "吉林省人民政府待办事项" in page.text and "应报告进度" in page.text
    assert 'href="/tasks/task-hydrogen#act-report_progress-task-hydrogen"' in page.text


async def test_the_language_is_the_readers_choice_and_remembered(dashboard: httpx.AsyncClient) -> None:
    chosen = await dashboard.get("/language", params={"to": "ko", "back": "/todo"})
    assert chosen.status_code == 303 and chosen.headers["location"] == "/todo"
    page = await dashboard.get("/todo")
    assert '<html lang="ko">' in page.text and "지린성 인민정부 할 일" in page.text
    english = await dashboard.get("/language", params={"to": "en", "back": "https://evil.example/"})
    assert english.headers["location"] == "/", "never a redirect elsewhere"
    assert "To do for Jilin Provincial People" in (await dashboard.get("/todo")).text


async def test_a_task_is_assigned_in_the_plan_whose_form_it_was(
    dashboard: httpx.AsyncClient, tasks: TasksStandIn
) -> None:
    """The plan a task is created in is the action's, not something typed: without it every
    assignment came back 422 about a field the form does not show."""
    page = (await dashboard.get("/plan")).text
    form = posted(page, "act-create_task-plan-zone", title="跨境电商", field="trade", lead_department="JILIN")
    form |= {"due": "2027-12-31", "given.plan_id": hidden(page, "act-create_task-plan-zone", "given.plan_id")}
    assert (await dashboard.post("/plan/act", data=form)).status_code == 303
    body = orjson.loads(tasks.sent[0].content)
    assert body["plan_id"] == "plan-zone" and body["title"] == "跨境电商"
    tasks.answer = httpx.Response(
        422, json={"status": 422, "detail": "plan_id: no such plan", "errors": [{"field": "plan_id", "message": "x"}]}
    )
    again = await dashboard.post("/plan/act", data={**form, "idempotency_key": "another"})
    assert again.status_code == 400 and "plan_id: no such plan" in again.text, "said above the fields"


async def test_what_changed_is_marked_even_when_the_trail_learns_of_it_a_moment_after_the_service(
    dashboard: httpx.AsyncClient, tasks: TasksStandIn
) -> None:
    """The trail is written after the tasks service acts: a page redrawn at once after a 412 waits
    until the trail holds the version the service answered with, so the change it is about is shown."""
    page = (await dashboard.get("/tasks/task-hydrogen")).text
    tasks.answer = httpx.Response(412, json={"status": 412, "detail": "the task is at version 4"})
    change = datetime.now(UTC) + timedelta(seconds=1)
    tasks.trail = [health_changed_at(change, version=4)]
    tasks.trail_behind_by = 3
    answer = await dashboard.post(
        "/tasks/task-hydrogen/act", data=posted(page, "act-report_progress-task-hydrogen", percent="50")
    )
    assert answer.status_code == 409
    shown_at = tasks.trail[0]["event"]["time"]
    assert f'class=" changed" data-kind="task.health_changed" data-time="{shown_at}"' in answer.text


async def test_what_changed_is_marked_though_it_was_decided_before_the_form_was_shown(
    dashboard: httpx.AsyncClient, tasks: TasksStandIn
) -> None:
    """A change the tasks service decided a moment before the page was drawn, but had not applied
    when the page read the task, is what the form did not see: it is marked by its version, not by
    its time (CI saw a 412 with nothing marked when the service's own assessment raced the page)."""
    page = (await dashboard.get("/tasks/task-hydrogen")).text
    tasks.answer = httpx.Response(412, json={"status": 412, "detail": "the task is at version 4"})
    earlier = health_changed_at(datetime.now(UTC) - timedelta(seconds=1), version=4)
    seen = health_changed_at(datetime.now(UTC) - timedelta(seconds=60), version=3, subject="issue-7")
    tasks.trail = [seen, earlier]
    answer = await dashboard.post(
        "/tasks/task-hydrogen/act", data=posted(page, "act-report_progress-task-hydrogen", percent="50")
    )
    assert answer.status_code == 409 and 'id="changed"' in answer.text
    marked = re.findall(r'<tr class="[^"]*changed"[^>]*data-time="([^"]+)"', answer.text)
    assert marked == [earlier["event"]["time"]], "the change to the task, not the issue's older one"
