"""A plan's task breakdown from an Excel sheet: the template to fill, a check that lists each
row's problems by cell, and the import, one command per row under the row's own Idempotency-Key
(a row already in the plan is not sent again: a re-run changes nothing)."""

from __future__ import annotations

import asyncio
import re
import zipfile
from collections.abc import Sequence
from typing import BinaryIO

from fastapi import APIRouter, Request, Response
from openpyxl import load_workbook
from starlette.datastructures import UploadFile

from services.web.application.task_import import import_rows
from services.web.domain.task_sheet import COLUMNS, MAX_ROWS, Cell, Problem, Row, SheetReport, rows_of
from services.web.entrypoints.acts import bounded_form
from services.web.entrypoints.pages import plan_page_of
from services.web.entrypoints.rendering import locale_of, zone_of
from services.web.entrypoints.session import Runtime, SignedIn, checked, same_origin
from services.web.entrypoints.spreadsheets import Sheet, download
from shared import i18n
from shared.contract.codes import CooperationField, Department
from shared.contract.types import AGGREGATE_ID_PATTERN
from shared.http.problems import Problem as HttpProblem
from shared.i18n import gettext as _
from shared.i18n import names

router = APIRouter(include_in_schema=False)
IMPORT = "/plan/import"


@router.get("/plan/template.xlsx")
async def template(request: Request, session: SignedIn) -> Response:
    """The sheet to fill, with an example row, and a second sheet of what each column takes."""
    with i18n.using(locale_of(request), zone_of(request)):
        tasks = Sheet(
            _("Tasks"),
            [_(column.label) for column in COLUMNS],
            [
                [
                    _("Cross-border e-commerce pilot zone"),
                    names.field("trade"),
                    names.department("JILIN"),
                    names.department("MOFCOM"),
                    "2027-12-31",
                ]
            ],
        )
        notes = Sheet(
            _("How to fill it"),
            [_("Column"), _("What it takes"), _("Code"), _("Name")],
            [
                *([column.letter + " " + _(column.label), _(column.hint), "", ""] for column in COLUMNS),
                *([_("Field of cooperation"), "", str(code), names.field(code)] for code in CooperationField),
                *([_("Department"), "", str(code), names.department(code)] for code in Department),
            ],
        )
        return download("policytrack-task-sheet", tasks, notes)


@router.post(IMPORT)
async def import_sheet(request: Request, web: Runtime, session: SignedIn) -> Response:
    same_origin(request)
    posted = await bounded_form(request, max_files=1, max_fields=20)
    checked(session, str(posted.get("csrf", "")))
    plan_id, sheet = str(posted.get("plan_id", "")), posted.get("sheet")
    if not re.fullmatch(AGGREGATE_ID_PATTERN, plan_id) or not isinstance(sheet, UploadFile):
        raise HttpProblem(422, "a sheet and the plan it is for", field="sheet")
    with i18n.using(locale_of(request), zone_of(request)):
        rows, problems = await _read(sheet.file, plan_id, request)
        report = SheetReport(plan_id, False, tuple(rows), tuple(problems), {})
        if posted.get("mode") == "import" and report.ready:
            report = SheetReport(
                plan_id, True, report.rows, (), await import_rows(web.backends, session.token, plan_id, rows)
            )
    return await plan_page_of(request, web, session, sheet=report, status=200 if report.ready else 422)


async def _read(file: BinaryIO, plan_id: str, request: Request) -> tuple[list[Row], list[Problem]]:
    try:
        cells = await asyncio.to_thread(_cells, file)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        return [], [Problem(1, "A", _("This is not an Excel workbook (.xlsx); download the template."))]
    return rows_of(cells, plan_id, zone_of(request))


def _cells(file: BinaryIO) -> list[Sequence[Cell]]:
    book = load_workbook(file, read_only=True, data_only=True)
    try:
        page = book.worksheets[0]
        rows = page.iter_rows(max_row=MAX_ROWS + 2, max_col=len(COLUMNS), values_only=True)
        return [tuple(value if isinstance(value, Cell) else str(value) for value in row) for row in rows]
    finally:
        book.close()
