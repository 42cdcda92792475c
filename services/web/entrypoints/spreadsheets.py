"""The dashboard's tables as Excel workbooks (.xlsx, ``openpyxl``): the rows and words of the
page, in the reader's language, with times in Beijing time as real dates Excel sorts and filters."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from urllib.parse import quote

from fastapi import Response
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from shared import i18n

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MOMENT_FORMAT = "yyyy-mm-dd hh:mm"
WIDEST = 60

Value = str | int | float | datetime | None


@dataclass(frozen=True)
class Sheet:
    title: str
    headers: Sequence[str]
    rows: Sequence[Sequence[Value]]


def workbook(*sheets: Sheet) -> bytes:
    """Each sheet: a bold header row that stays in view and filters, then the rows."""
    book = Workbook()
    first = book.active
    assert first is not None  # a new workbook has its one sheet
    for index, sheet in enumerate(sheets):
        _fill(first if index == 0 else book.create_sheet(), sheet)
    out = BytesIO()
    book.save(out)
    return out.getvalue()


def _fill(page: Worksheet, sheet: Sheet) -> None:
    page.title = _sheet_title(sheet.title)
    page.append(list(sheet.headers))
    for heading in page[1]:
        heading.font = Font(bold=True)
    for values in sheet.rows:
        page.append([_local(value) for value in values])
    for cells in page.iter_rows(min_row=2):
        for cell in cells:
            if isinstance(cell.value, datetime):
                cell.number_format = MOMENT_FORMAT
            elif isinstance(cell.value, str):
                # openpyxl takes text that begins with = for a formula: what people typed is shown, never run.
                cell.data_type = "s"
    page.freeze_panes = "A2"
    page.auto_filter.ref = page.dimensions
    for index, header in enumerate(sheet.headers):
        shown = [header, *(_text(values[index]) for values in sheet.rows)]
        page.column_dimensions[get_column_letter(index + 1)].width = min(WIDEST, 2 + max(map(_width, shown)))


def download(filename: str, *sheets: Sheet) -> Response:
    """The workbook as an attachment; the file is named in the reader's language too."""
    named = f"attachment; filename=\"{filename}.xlsx\"; filename*=UTF-8''{quote(sheets[0].title)}.xlsx"
    return Response(workbook(*sheets), media_type=XLSX, headers={"Content-Disposition": named})


def moment(value: object) -> datetime | None:
    """A moment from a service's JSON (ISO 8601 text), for a cell."""
    found = i18n.moment_of(value) if isinstance(value, str | datetime) else None
    return found if isinstance(found, datetime) else None


def _local(value: Value) -> Value:
    # Excel has no time zones: a moment is written as the wall-clock time in Beijing.
    if isinstance(value, datetime):
        return value.astimezone(i18n.zone()).replace(tzinfo=None)
    return value


def _sheet_title(title: str) -> str:
    # A sheet's name has at most 31 characters and none of []:*?/\
    return "".join(" " if char in "[]:*?/\\" else char for char in title)[:31]


def _text(value: Value) -> str:
    if isinstance(value, datetime):
        return value.astimezone(i18n.zone()).strftime("%Y-%m-%d %H:%M")
    return "" if value is None else str(value)


def _width(text: str) -> int:
    # Chinese and Korean characters take two columns of a fixed-width font.
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)
