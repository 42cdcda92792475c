"""Reports from a running fold of the trail (issue 28, item 3): each request for a report
replayed the whole trail, however often it was asked and however little the trail had grown.
Now the trail is folded once and each report folds only what was stored since; what it says is
the same as a replay from the start, for any period."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from services.audit.adapters.chaining import chained
from services.audit.adapters.store import AuditStore, EntryFilter
from services.audit.application.reports import Reports, replay
from services.audit.domain import accounts
from services.audit.domain.chain import LogRecord
from services.audit.domain.implementation import implementation_report
from services.tasks.domain import commands as cmd
from shared.bounds import Bound, Held
from shared.contract.codec import encode
from shared.contract.codes import ApprovalKind, CooperationField, Department, Rating, Severity
from shared.contract.envelope import AnyEvent
from shared.domain.refusals import Busy
from shared.http.problems import REFUSAL_STATUS
from tests.unit.test_tasks_rules import JILIN, NDRC, SC, Scenario

BOUND = Bound(per_user=2, in_all=8)
EVERYTHING = EntryFilter()


class CountedStore(AuditStore):
    """A real store that remembers what each full read of the trail asked for."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.reads: list[EntryFilter] = []

    async def stream(self, shape: Any, where: EntryFilter = EVERYTHING, chunk: int = 2000) -> AsyncIterator[Any]:
        self.reads.append(where)
        async for rows in super().stream(shape, where, chunk):
            yield rows


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CountedStore]:
    store = CountedStore(f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def stored(store: AuditStore, events: list[AnyEvent]) -> None:
    first = await store.stored_head()
    encoded = [encode(event) for event in events]
    await store.write(
        chained(
            [
                LogRecord.kept(e.topic, 0, first + n, 1_700_000_000_000 + n, e.key, e.value, e.headers)
                for n, e in enumerate(encoded)
            ],
            store.head,
        )
    )


def the_work(world: Scenario, n: int) -> None:
    """A task with an escalated issue, a decided approval and an evaluation."""
    due = world.now + timedelta(days=30 * n)
    world.run(
        cmd.CreateTask(
            task_id=f"t{n}",
            plan_id="p",
            title=f"Task {n}",
            field=CooperationField.TRADE,
            lead_department=Department.JILIN,
            due=due,
        ),
        JILIN,
    )
    world.run(cmd.ReportIssue(issue_id=f"i{n}", task_id=f"t{n}", title="Customs", severity=Severity.MAJOR), JILIN)
    world.run(cmd.EscalateIssue(issue_id=f"i{n}", reason="stalled"), NDRC)
    world.run(
        cmd.RequestApproval(approval_id=f"a{n}", task_id=f"t{n}", kind=ApprovalKind.POLICY, title="Bonded zone"), JILIN
    )
    world.run(cmd.DecideApproval(approval_id=f"a{n}", granted=n % 2 == 0, reason="as planned"), SC)
    world.run(
        cmd.RecordEvaluation(evaluation_id=f"e{n}", task_id=f"t{n}", rating=Rating.FAIR, findings="on time"), NDRC
    )


async def test_a_report_folds_only_what_was_stored_since_and_says_what_a_full_replay_says(store: CountedStore) -> None:
    world = Scenario()
    world.run(cmd.ApprovePlan(plan_id="p", title="Overall Plan"), SC)
    for n in range(3):
        the_work(world, n)
    await stored(store, world.events)
    reports = Reports(store, Held("reports", BOUND))
    first_events = len(world.events)
    middle, latest = world.events[4].time, world.events[-1].time
    start, end = world.events[0].time, latest + timedelta(days=1)

    assert await reports.implementation("u-ndrc", start, end) == implementation_report(
        await replay(store, end, start), start, end
    )
    for n in range(3, 6):
        the_work(world, n)
    await stored(store, world.events[first_events:])
    store.reads.clear()
    later = world.events[-1].time + timedelta(days=1)
    report = await reports.implementation("u-ndrc", middle, later)
    reads = list(store.reads)

    assert [read.after_sequence for read in reads] == [first_events], "only what was stored since is read"
    assert report == implementation_report(await replay(store, later, middle), middle, later)
    assert report["approvals_decided"] and report["evaluations"], "the period's listed acts are there"
    expected = await replay(store, later)
    assert await reports.responsibility("u-nao", later) == accounts.responsibility(
        expected.projection, expected.acts, expected.escalations, later
    )


async def test_a_report_that_ends_before_what_was_folded_is_replayed_to_its_end(store: CountedStore) -> None:
    world = Scenario()
    world.run(cmd.ApprovePlan(plan_id="p", title="Overall Plan"), SC)
    for n in range(4):
        the_work(world, n)
    await stored(store, world.events)
    reports = Reports(store, Held("reports", BOUND))
    end = world.events[-1].time + timedelta(days=1)
    await reports.implementation("u-ndrc", world.events[0].time, end)
    earlier = world.events[6].time

    report = await reports.implementation("u-ndrc", world.events[0].time, earlier)

    assert report == implementation_report(
        await replay(store, earlier, world.events[0].time), world.events[0].time, earlier
    )
    assert report != await reports.implementation("u-ndrc", world.events[0].time, end)


async def test_a_report_asked_again_before_the_trail_grows_is_not_built_again(store: CountedStore) -> None:
    world = Scenario()
    world.run(cmd.ApprovePlan(plan_id="p", title="Overall Plan"), SC)
    await stored(store, world.events)
    reports = Reports(store, Held("reports", BOUND))
    start, end = world.now - timedelta(days=1), world.events[0].time + timedelta(days=1)
    first = await reports.implementation("u-ndrc", start, end)
    store.reads.clear()
    assert await reports.implementation("u-nao", start, end) == first and store.reads == []


async def test_reports_built_at_once_are_bounded(store: CountedStore) -> None:
    building = Held("reports", Bound(per_user=1, in_all=8))
    reports = Reports(store, building)
    world = Scenario()
    with building.holding("u-ndrc"), pytest.raises(Busy) as refused:
        await reports.implementation("u-ndrc", world.now, world.now + timedelta(days=1))
    assert REFUSAL_STATUS[refused.value.kind] == 429 and refused.value.retry_after_seconds == 5
