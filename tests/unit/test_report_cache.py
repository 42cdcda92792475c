"""Reports by period and trail position (issue 28, item 3): each request for the implementation
report replayed the whole trail, however often it was asked while the trail stood still."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from services.audit.reports import ReportCache
from shared.http.bounds import Bound, Held
from shared.http.problems import Problem

START, END = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)


class Trail:
    """A store whose trail holds ``head`` entries (none of them domain events); counts replays."""

    def __init__(self) -> None:
        self.head, self.replays = 10, 0

    async def stored_head(self) -> int:
        return self.head

    async def stream(self, shape: object, where: object) -> AsyncIterator[list[object]]:
        self.replays += 1
        for batch in ():
            yield batch


async def test_a_report_asked_again_before_the_trail_grows_is_not_replayed_again() -> None:
    trail = Trail()
    cache = ReportCache(trail, Held("reports", Bound(per_user=2, in_all=8)))  # type: ignore[arg-type]  # the stand-in
    first = await cache.implementation("u-ndrc", START, END)
    assert await cache.implementation("u-nao", START, END) == first and trail.replays == 1
    trail.head += 1
    await cache.implementation("u-ndrc", START, END)
    assert trail.replays == 2, "a grown trail is replayed"


async def test_reports_built_at_once_are_bounded() -> None:
    building = Held("reports", Bound(per_user=1, in_all=8))
    cache = ReportCache(Trail(), building)  # type: ignore[arg-type]  # the stand-in
    with building.holding("u-ndrc"), pytest.raises(Problem) as refused:
        await cache.implementation("u-ndrc", START, END)
    assert refused.value.status == 429
