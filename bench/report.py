"""Renders ``docs/BENCHMARKS.md`` from ``bench/results/*.json``: every row with its baseline,
ratio and target, the machine it ran on, and a plot of each figure against its target.

    .venv/bin/python -m bench.report
"""

from __future__ import annotations

import os
import platform
import re
import sqlite3
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import matplotlib
import orjson
import psutil
from jinja2 import Environment

from bench.results import RESULTS
from shared.settings import PROJECT_ROOT

matplotlib.use("Agg")
import matplotlib.pyplot as plt

DOCS = PROJECT_ROOT / "docs"
PLOT = DOCS / "benchmarks.png"
TEMPLATE = """# Benchmarks

Measured by `make bench` on {{ machine.when }} (scale: {{ scales }}). Every ratio is against a
baseline measured in the same run; the plot shows each figure as a share of its target
(1.0 is the target; for "lower is better" figures, the target over the value).

Machine: {{ machine.cores }} cores, {{ machine.memory }} GiB, {{ machine.system }};
Python {{ machine.python }}, Kafka {{ machine.kafka }}, aiokafka {{ machine.aiokafka }},
pydantic {{ machine.pydantic }}, FastAPI {{ machine.fastapi }}, SQLite {{ machine.sqlite }}.
Where a target is missed, [performance.md](performance.md) says where the time goes.

![each figure against its target](benchmarks.png)

{% for result in results %}
## {{ result.name }}

| figure | value | baseline | ratio | target | met |
| --- | ---: | ---: | ---: | --- | --- |
{% for row in result.rows %}
{{ table_line(row) }}
{% endfor %}

{% for note in result.notes %}
- {{ note }}
{% endfor %}

{% endfor %}
"""


def table_line(row: dict[str, Any]) -> str:
    baseline = f"{row['baseline']:,.1f}" if row["baseline"] is not None else ""
    ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else ""
    met = {True: "yes", False: "**no**", None: ""}[row["met"]]
    value = f"{row['value']:,.1f} {row['unit']}"
    return f"| {row['name']} | {value} | {baseline} | {ratio} | {target(row)} | {met} |"


def target(row: dict[str, Any]) -> str:
    if row["target"] is None:
        return ""
    sign = "≤" if row["lower_is_better"] else "≥"
    return f"{sign} {row['target']:,g}{'×' if row['target_of'] == 'ratio' else ' ' + row['unit']}"


def share_of_target(row: dict[str, Any]) -> float | None:
    measured = row["ratio"] if row["target_of"] == "ratio" else row["value"]
    if row["target"] is None or measured is None:
        return None
    target, measured = float(row["target"]), float(measured)
    if row["lower_is_better"]:
        return target / measured if measured else None
    return measured / target


def machine() -> dict[str, Any]:
    kafka = re.search(
        r"<kafka.version>(.*)</kafka.version>", (PROJECT_ROOT / "deploy" / "kafka" / "pom.xml").read_text()
    )

    return {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "memory": round(psutil.virtual_memory().total / 2**30),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "kafka": kafka.group(1) if kafka else "?",
        "aiokafka": version("aiokafka"),
        "pydantic": version("pydantic"),
        "fastapi": version("fastapi"),
        "sqlite": sqlite3.sqlite_version,
    }


def plot(results: list[dict[str, Any]], path: Path) -> None:
    rows = [
        (f"{r['name']}", share)
        for result in results
        for r in result["rows"]
        if (share := share_of_target(r)) is not None
    ]
    figure, axes = plt.subplots(figsize=(10, 0.38 * len(rows) + 1.2))
    names = [name for name, _ in rows]
    shares = [min(share, 3.0) for _, share in rows]
    colours = ["#27ae60" if share >= 1 else "#c0392b" for _, share in rows]
    axes.barh(range(len(rows)), shares, color=colours)
    axes.axvline(1.0, color="#1f2d3d", linestyle="--", linewidth=1)
    axes.set_yticks(range(len(rows)), names, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("share of target (1.0 = target met; capped at 3)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    results = [orjson.loads(path.read_bytes()) for path in sorted(RESULTS.glob("*.json"))]
    if not results:
        raise SystemExit("no results in bench/results: run make bench first")
    plot(results, PLOT)
    environment = Environment(autoescape=False, trim_blocks=True, lstrip_blocks=True)
    document = environment.from_string(TEMPLATE).render(
        results=results,
        machine=machine(),
        scales=", ".join(sorted({r["scale"] for r in results})),
        table_line=table_line,
    )
    (DOCS / "BENCHMARKS.md").write_text(document)
    print(f"wrote {DOCS / 'BENCHMARKS.md'} and {PLOT}")


if __name__ == "__main__":
    main()
