"""The figures docs/BENCHMARKS.md shows are the ones bench/results holds: both are written by
one ``make bench``, and a result file overwritten by a lone benchmark run must not be committed."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from bench.report import DOCS, table_line
from bench.results import RESULTS

RESULT_FILES = sorted(RESULTS.glob("*.json"))


def test_there_are_results_to_show() -> None:
    assert RESULT_FILES, "bench/results holds no results"


@pytest.mark.parametrize("path", RESULT_FILES, ids=lambda path: path.stem)
def test_every_figure_of_a_result_is_in_the_benchmarks_document(path: Path) -> None:
    shown = (DOCS / "BENCHMARKS.md").read_text()
    result = orjson.loads(path.read_bytes())
    missing = [row["name"] for row in result["rows"] if table_line(row) not in shown]
    assert not missing, f"{path}: figures not in docs/BENCHMARKS.md: {missing}"
