"""Importing a plan's tasks from a sheet in the dashboard (issue 30, item 4), in process against
a stand-in of the tasks service: the template to fill; a check that lists each bad row by cell
and sends nothing; an import that sends one command per row, each under its own key, and leaves
out what the plan already holds, so that importing again sends nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from io import BytesIO
from typing import Any

import httpx
import orjson
import pytest
from openpyxl import Workbook, load_workbook

from tests.unit.test_dashboard_acts import PLAN_ID, TasksStandIn, form_token_of
from tests.unit.test_dashboard_edge import TASK, sign_in, web_app

HEADER = ["任务", "合作领域", "牵头单位", "配合单位", "截止日期"]


class PlanStandIn(TasksStandIn):
    """Creates the tasks it is sent, so that the list of tasks shows them afterwards."""

    def __init__(self) -> None:
        super().__init__()
        self.tasks: list[dict[str, Any]] = [{**TASK, "plan_id": "plan-zone", "title": "绿色港口"}]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/tasks" and request.method == "GET":
            return httpx.Response(200, json={"items": self.tasks, "next_cursor": None})
        if request.url.path == "/v1/tasks" and request.method == "POST":
            self.sent.append(request)
            body = orjson.loads(request.content)
            self.tasks.append({**TASK, **body, "task_id": f"task-{len(self.tasks)}"})
            return httpx.Response(201, json={"id": f"task-{len(self.tasks) - 1}", "version": 1})
        return super().__call__(request)


def sheet(*rows: list[Any]) -> bytes:
    book = Workbook()
    page = book.active
    assert page is not None
    page.append(HEADER)
    for row in rows:
        page.append(row)
    out = BytesIO()
    book.save(out)
    return out.getvalue()


GOOD = ["跨境电商试验区", "贸易", "吉林省人民政府", "商务部、海关总署", "2027-12-31"]
ALREADY = ["绿色港口", "环保", "CHANGCHUN", "", "2028-06-30"]
BAD = ["氢能产业集群", "农业", "吉林省人民政府", "", "明年"]


@pytest.fixture
def tasks() -> PlanStandIn:
    return PlanStandIn()


@pytest.fixture
async def dashboard(tasks: PlanStandIn) -> AsyncIterator[httpx.AsyncClient]:
    async with web_app(answer=tasks) as client:
        await sign_in(client, "JILIN", "implementer")
        yield client


async def send(dashboard: httpx.AsyncClient, content: bytes, mode: str) -> httpx.Response:
    page = (await dashboard.get("/plan")).text
    data = {"csrf": form_token_of(page), "plan_id": PLAN_ID, "mode": mode}
    return await dashboard.post(
        "/plan/import", data=data, files={"sheet": ("tasks.xlsx", content, "application/octet-stream")}
    )


async def test_the_template_has_the_columns_and_what_each_takes(dashboard: httpx.AsyncClient) -> None:
    answer = await dashboard.get("/plan/template.xlsx")
    book = load_workbook(BytesIO(answer.content))
    tasks, notes = book.worksheets
    assert [c.value for c in tasks[1]] == HEADER
    taken = [[c.value for c in row] for row in notes.iter_rows(min_row=2)]
    assert ["合作领域", None, "trade", "贸易"] in [[r[0], r[1] or None, r[2], r[3]] for r in taken]
    assert any(row[2] == "GACC" and row[3] == "海关总署" for row in taken)


async def test_a_check_lists_the_bad_rows_by_cell_and_sends_nothing(
    dashboard: httpx.AsyncClient, tasks: PlanStandIn
) -> None:
    answer = await send(dashboard, sheet(GOOD, BAD), "import")
    assert answer.status_code == 422
    assert 'data-cell="B3"' in answer.text and 'data-cell="E3"' in answer.text and "不是合作领域" in answer.text
    assert tasks.sent == [], "a sheet with a bad row imports nothing"


async def test_an_import_sends_each_new_row_once_and_again_sends_nothing(
    dashboard: httpx.AsyncClient, tasks: PlanStandIn
) -> None:
    checked = await send(dashboard, sheet(GOOD, ALREADY), "check")
    assert checked.status_code == 200 and 'id="import-ready"' in checked.text and tasks.sent == []
    imported = await send(dashboard, sheet(GOOD, ALREADY), "import")
    assert imported.status_code == 200 and 'id="import-done"' in imported.text
    assert [orjson.loads(r.content)["title"] for r in tasks.sent] == ["跨境电商试验区"]
    assert orjson.loads(tasks.sent[0].content)["supporting_departments"] == ["MOFCOM", "GACC"]
    assert tasks.sent[0].headers["idempotency-key"].startswith("import-")
    assert "方案中已有" in imported.text and "已创建" in imported.text
    again = await send(dashboard, sheet(GOOD, ALREADY), "import")
    assert again.status_code == 200 and len(tasks.sent) == 1, "importing the same sheet again changes nothing"


async def test_what_is_not_a_workbook_is_said_so(dashboard: httpx.AsyncClient, tasks: PlanStandIn) -> None:
    answer = await send(dashboard, b"%PDF-1.7 not a sheet", "check")
    assert answer.status_code == 422 and "不是 Excel 工作簿" in answer.text
