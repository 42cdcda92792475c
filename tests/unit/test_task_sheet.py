"""A plan's task breakdown read from a sheet (issue 30, item 4): each row becomes a create-task
body, or its problems by cell; names are read in any language the dashboard speaks, or as codes;
the same row of the same plan is the same act (one Idempotency-Key)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.web.domain.task_sheet import rows_of
from shared import i18n

BEIJING = ZoneInfo("Asia/Shanghai")
HEADER = ("任务", "合作领域", "牵头单位", "配合单位", "截止日期")


def read(*rows: tuple[object, ...], header: tuple[object, ...] = HEADER) -> tuple[list[Any], list[Any]]:
    with i18n.using("zh_CN", BEIJING):
        return rows_of([header, *rows], "plan-zone", BEIJING)  # type: ignore[list-item]  # cells as a sheet gives them


def test_a_row_in_chinese_names_becomes_the_command_body() -> None:
    rows, problems = read(("跨境电商试验区", "贸易", "吉林省人民政府", "商务部、海关总署", datetime(2027, 12, 31)))
    assert problems == [] and rows[0].problems == ()
    assert rows[0].body == {
        "plan_id": "plan-zone",
        "title": "跨境电商试验区",
        "field": "trade",
        "lead_department": "JILIN",
        "supporting_departments": ["MOFCOM", "GACC"],
        "due": "2027-12-31T23:59:59+08:00",
    }


def test_codes_english_names_and_written_dates_read_too() -> None:
    rows, _ = read(
        ("Hydrogen cluster", "industry", "Jilin Provincial People's Government", "MIIT, most", "2027/6/30"),
        ("Green port", "Environmental protection", "CHANGCHUN", "", "2028年1月15日"),
    )
    assert [r.body["field"] for r in rows if r.body] == ["industry", "environment"]
    assert rows[0].body and rows[0].body["supporting_departments"] == ["MIIT", "MOST"]
    assert rows[1].body and rows[1].body["due"].startswith("2028-01-15")


def test_each_problem_is_named_by_its_cell() -> None:
    rows, _ = read(
        ("Good row", "trade", "JILIN", "", date(2027, 1, 1)),
        ("", "farming", "Ministry of Magic", "MOFCOM、Nobody", "soon"),
    )
    assert rows[0].body is not None
    assert rows[1].body is None
    assert [p.cell for p in rows[1].problems] == ["A3", "B3", "C3", "D3", "E3"]
    assert "Nobody" in rows[1].problems[3].message and "MOFCOM" not in rows[1].problems[3].message


def test_the_same_row_of_the_same_plan_is_the_same_act_and_blank_rows_are_skipped() -> None:
    row = ("Hydrogen cluster", "industry", "JILIN", "", "2027-06-30")
    first, _ = read(row, (None, None, None, None, None), row)
    assert [r.number for r in first] == [2, 4]
    assert first[0].key == first[1].key != read((*row[:4], "2027-07-01"))[0][0].key


def test_a_sheet_without_the_templates_header_is_refused_as_a_whole() -> None:
    rows, problems = read(("x", "trade", "JILIN", "", "2027-01-01"), header=("名称", "日期"))
    assert rows == [] and problems[0].cell == "A1"
