"""The rows every benchmark writes: a figure, the baseline measured in the same run, the ratio,
the target and whether it was met, saved to ``bench/results/<name>.json`` for the report.

``BENCH_SCALE=small`` shrinks every benchmark so that ``make bench`` ends within minutes and
still prints every row; the default scale is the one the targets were set for."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

RESULTS = Path(__file__).resolve().parent / "results"
SCALE = os.environ.get("BENCH_SCALE", "full")


def scaled(full: int, small: int) -> int:
    """The size of a benchmark at the scale asked for."""
    return small if SCALE == "small" else full


@dataclass(frozen=True)
class Row:
    name: str
    value: float
    unit: str
    baseline: float | None = None
    """The same work done the plainest way, measured in the same run."""
    target: float | None = None
    target_of: Literal["ratio", "value"] = "ratio"
    lower_is_better: bool = False

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or not self.baseline:
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        measured = self.ratio if self.target_of == "ratio" else self.value
        if self.target is None or measured is None:
            return None
        return measured <= self.target if self.lower_is_better else measured >= self.target

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "met": self.met}

    def line(self) -> str:
        baseline = f"{self.baseline:>12,.1f}" if self.baseline is not None else f"{'':>12}"
        ratio = f"{self.ratio:>7.2f}" if self.ratio is not None else f"{'':>7}"
        sign = "<=" if self.lower_is_better else ">="
        target = f"{sign} {self.target:,g}{'x' if self.target_of == 'ratio' else ''}" if self.target else ""
        met = {True: "met", False: "MISSED", None: ""}[self.met]
        return f"  {self.name:<58}{self.value:>12,.1f} {self.unit:<9}{baseline}{ratio}  {target:<12}{met}"


@dataclass
class Results:
    """One benchmark's rows; ``save`` prints them and writes the JSON."""

    name: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        print(row.line(), flush=True)
        return row

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  ({text})", flush=True)

    def save(self) -> Path:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{self.name}.json"
        document = {"name": self.name, "scale": SCALE, "rows": [r.as_dict() for r in self.rows], "notes": self.notes}
        path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
        return path
