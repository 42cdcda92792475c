"""The responsibility table as the dashboard shows it: departments by columns, sorted on any
column, each cell with a heat level (0 to 5) relative to the column's largest value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.contract.reports import RESPONSIBILITY_COLUMNS, WORSE_WHEN_MORE

HEAT_LEVELS = 5
# The JSON of a signed report has its keys sorted; the table puts them back in reading order.
COLUMN_ORDER = RESPONSIBILITY_COLUMNS


@dataclass(frozen=True)
class Cell:
    value: int
    level: int
    worse_when_more: bool


@dataclass(frozen=True)
class Row:
    department: str
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    sort: str
    descending: bool


def heat(value: int, largest: int) -> int:
    """0 for nothing, then 1..5 by the share of the column's largest value."""
    if value <= 0 or largest <= 0:
        return 0
    return max(1, round(HEAT_LEVELS * value / largest))


def table(departments: Mapping[str, Mapping[str, int]], *, sort: str = "department", descending: bool = False) -> Table:
    """Departments with nothing in any column are left out; an unknown sort column sorts by name."""
    given = next(iter(departments.values()), {}).keys()
    columns = tuple(sorted(given, key=lambda c: (COLUMN_ORDER.index(c) if c in COLUMN_ORDER else len(COLUMN_ORDER), c)))
    active = {name: counts for name, counts in departments.items() if any(counts.values())}
    largest = {column: max((c.get(column, 0) for c in active.values()), default=0) for column in columns}
    rows = [
        Row(
            name,
            tuple(Cell(counts.get(c, 0), heat(counts.get(c, 0), largest[c]), c in WORSE_WHEN_MORE) for c in columns),
        )
        for name, counts in active.items()
    ]
    if sort in columns:
        index = columns.index(sort)
        rows.sort(key=lambda row: (row.cells[index].value, row.department), reverse=descending)
    else:
        sort = "department"
        rows.sort(key=lambda row: row.department, reverse=descending)
    return Table(columns, tuple(rows), sort, descending)
