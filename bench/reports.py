"""The NDRC's report up to now, asked again as the trail grows: built by replaying the whole
trail each time (the baseline, as before issue 28) against the running fold, which folds only
what was stored since the last report and reads only the period's events. In process, SQLite.

    .venv/bin/python -m bench.reports [--tasks 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench.results import Results, Row, scaled
from services.audit.adapters.chaining import chained
from services.audit.adapters.store import AuditStore
from services.audit.application.reports import Reports, replay
from services.audit.domain.chain import LogRecord
from services.audit.domain.implementation import implementation_report
from services.tasks.domain import commands as cmd
from shared.bounds import Bound, Held
from shared.contract.codec import encode
from shared.contract.codes import CooperationField, Department
from shared.contract.envelope import AnyEvent
from tests.unit.test_tasks_rules import JILIN, SC, Scenario

ROUNDS = 10
"""Reports asked, each after a few more acts are stored."""


async def store_events(store: AuditStore, events: list[AnyEvent]) -> None:
    first = await store.stored_head()
    records = [
        LogRecord.kept(e.topic, 0, first + n, 1_700_000_000_000 + first + n, e.key, e.value, e.headers)
        for n, e in enumerate(map(encode, events))
    ]
    for at in range(0, len(records), 5000):
        await store.write(chained(records[at : at + 5000], store.head))


def acts(world: Scenario, first: int, count: int) -> None:
    for n in range(first, first + count):
        world.run(
            cmd.CreateTask(
                task_id=f"t{n}",
                plan_id="p",
                title=f"Task {n}",
                field=CooperationField.TRADE,
                lead_department=Department.JILIN,
                due=world.now + timedelta(days=365),
            ),
            JILIN,
        )
        for percent in (20, 40, 60, 80):
            world.run(cmd.ReportProgress(task_id=f"t{n}", percent=percent, note="weekly"), JILIN)


async def main(tasks: int) -> None:
    results = Results("reports")
    world = Scenario()
    world.run(cmd.ApprovePlan(plan_id="p", title="Overall Plan"), SC)
    acts(world, 0, tasks)
    with tempfile.TemporaryDirectory() as folder:
        store = AuditStore(f"sqlite+aiosqlite:///{Path(folder) / 'audit.db'}")
        await store.open()
        try:
            await store_events(store, world.events)
            reports = Reports(store, Held("reports", Bound(per_user=2, in_all=8)))
            start = world.events[0].time
            await reports.implementation("u-ndrc", start, world.events[-1].time)  # the first fold, once
            replayed, running = [], []
            for n in range(ROUNDS):
                stored = len(world.events)
                acts(world, tasks + 2 * n, 2)
                await store_events(store, world.events[stored:])
                end = world.events[-1].time + timedelta(seconds=1)
                began = time.perf_counter()
                baseline = implementation_report(await replay(store, end, start), start, end)
                replayed.append(time.perf_counter() - began)
                began = time.perf_counter()
                report = await reports.implementation("u-ndrc", start, end)
                running.append(time.perf_counter() - began)
                assert report == baseline, "the running fold and the replay disagree"
        finally:
            await store.close()
    results.note(f"{len(world.events):,} events on the trail; {ROUNDS} reports, each after 10 more acts")
    results.add(
        Row(
            "report up to now, median ms (running fold vs replay)",
            statistics.median(running) * 1000,
            "ms",
            baseline=statistics.median(replayed) * 1000,
            target=0.1,
            lower_is_better=True,
        )
    )
    results.save()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=scaled(4000, 400))
    asyncio.run(main(parser.parse_args().tasks))
