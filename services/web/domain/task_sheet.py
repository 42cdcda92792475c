"""A plan's task breakdown as a spreadsheet: the template's columns, and each row read into the
body of a create-task command, or the problems that keep it from being one, by row and column.
Pure: the edge reads the workbook's cells and sends the commands."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

import orjson

from services.web.domain.forms import end_of_day
from shared import i18n
from shared.contract.codes import CooperationField, Department
from shared.i18n import N_, gettext, names

Cell = str | int | float | date | datetime | None


@dataclass(frozen=True)
class Column:
    name: str
    label: str
    letter: str
    hint: str


COLUMNS = (
    Column("title", N_("Task"), "A", N_("what is to be done, as the plan says it")),
    Column("field", N_("Field of cooperation"), "B", N_("one of the fields listed below, by name or code")),
    Column("lead_department", N_("Lead department"), "C", N_("one department, by name or code")),
    Column(
        "supporting_departments",
        N_("Supporting departments"),
        "D",
        N_("none or several, by name or code, separated by 、 or commas"),
    ),
    Column("due", N_("Due date"), "E", N_("a date, 2027-12-31 (the end of that day, Beijing time)")),
)
MAX_ROWS = 500
SEPARATORS = re.compile(r"[、,，;；\n]+")
EARLIEST, LATEST = date(2000, 1, 2), date(2200, 12, 30)


@dataclass(frozen=True)
class Problem:
    row: int
    column: str
    message: str

    @property
    def cell(self) -> str:
        return f"{self.column}{self.row}"


@dataclass(frozen=True)
class Row:
    """One row of the sheet: the command's body when it reads, else its problems."""

    number: int
    title: str
    body: dict[str, Any] | None
    problems: tuple[Problem, ...]
    key: str = ""
    """The command's Idempotency-Key: the same row of the same plan is the same act."""


@dataclass(frozen=True)
class SheetReport:
    """What came of a sheet sent to the plan page: checked only, or imported row by row."""

    plan_id: str
    imported: bool
    rows: tuple[Row, ...]
    problems: tuple[Problem, ...]
    outcomes: Mapping[int, str]
    """Per row number, what the tasks service did: created, already there, or its refusal."""

    @property
    def ready(self) -> bool:
        return bool(self.rows) and not self.problems and all(row.body is not None for row in self.rows)


def vocabulary(codes: Iterable[str], name_of: Any) -> dict[str, str]:
    """Every way a reader may write a code: the code, and its name in each language."""
    spelled: dict[str, str] = {}
    for code in codes:
        spelled[_folded(code)] = code
        for locale in i18n.LOCALES:
            with i18n.using(locale):
                spelled[_folded(name_of(code))] = code
    return spelled


def rows_of(cells: Iterable[Sequence[Cell]], plan_id: str, zone: tzinfo) -> tuple[list[Row], list[Problem]]:
    """The rows after the header, read; and problems with the sheet as a whole."""
    fields = vocabulary([str(f) for f in CooperationField], names.field)
    departments = vocabulary([str(d) for d in Department], names.department)
    iterator = iter(cells)
    header = next(iterator, None)
    if header is None or not _is_header(header):
        return [], [Problem(1, "A", gettext("The first row is not the template's header; download the template."))]
    rows: list[Row] = []
    for number, values in enumerate(iterator, start=2):
        if all(_text(v) == "" for v in values[: len(COLUMNS)]):
            continue
        if len(rows) == MAX_ROWS:
            return rows, [Problem(number, "A", gettext("At most %(count)s tasks in one sheet.", count=MAX_ROWS))]
        rows.append(_row(number, list(values) + [None] * len(COLUMNS), plan_id, zone, fields, departments))
    return rows, []


def _row(
    number: int,
    values: list[Cell],
    plan_id: str,
    zone: tzinfo,
    fields: Mapping[str, str],
    departments: Mapping[str, str],
) -> Row:
    problems: list[Problem] = []

    def problem(column: Column, message: str) -> None:
        problems.append(Problem(number, column.letter, message))

    title_col, field_col, lead_col, supporting_col, due_col = COLUMNS
    title = " ".join(_text(values[0]).split())
    if not 1 <= len(title) <= 300:
        problem(title_col, gettext("A task needs a title of at most 300 characters."))
    field = fields.get(_folded(_text(values[1])))
    if field is None:
        problem(field_col, gettext("Not a field of cooperation: “%(value)s”.", value=_text(values[1])))
    lead = departments.get(_folded(_text(values[2])))
    if lead is None:
        problem(lead_col, gettext("Not a department: “%(value)s”.", value=_text(values[2])))
    named = [part.strip() for part in SEPARATORS.split(_text(values[3])) if part.strip()]
    supporting = [departments[_folded(name)] for name in named if _folded(name) in departments]
    unknown = [name for name in named if _folded(name) not in departments]
    if unknown:
        problem(supporting_col, gettext("Not departments: %(names)s.", names="、".join(unknown)))
    due = _day(values[4])
    if due is None:
        problem(due_col, gettext("Not a date between 2000 and 2200: “%(value)s”.", value=_text(values[4])))
    if problems:
        return Row(number, title, None, tuple(problems))
    assert due is not None
    body = {
        "plan_id": plan_id,
        "title": title,
        "field": field,
        "lead_department": lead,
        "supporting_departments": list(dict.fromkeys(supporting)),
        "due": end_of_day(due, zone).isoformat(),
    }
    key = "import-" + hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:40]
    return Row(number, title, body, (), key)


def _is_header(values: Sequence[Cell]) -> bool:
    first = _folded(_text(values[0]) if values else "")
    return first in {_folded(label) for label in _labels(COLUMNS[0])}


def _labels(column: Column) -> set[str]:
    found = {column.name, column.label}
    for locale in i18n.LOCALES:
        with i18n.using(locale):
            found.add(gettext(column.label))
    return found


def _day(value: Cell) -> date | None:
    day: date | None = None
    if isinstance(value, datetime):
        day = value.date()
    elif isinstance(value, date):
        day = value
    elif isinstance(value, str):
        text = value.strip().replace("/", "-").replace("年", "-").replace("月", "-").removesuffix("日")
        try:
            day = date(*map(int, text.split("-")))
        except (TypeError, ValueError):
            day = None
    return day if day is not None and EARLIEST <= day <= LATEST else None


def _text(value: Cell) -> str:
    return "" if value is None else str(value).strip()


def _folded(text: str) -> str:
    return " ".join(text.casefold().split())
