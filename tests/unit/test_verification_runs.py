"""One verification of the trail at a time (issue 28, item 3): any SC, JILIN, NDRC or NAO user
could start full verifications side by side, each a pass over every entry and the whole log."""

from __future__ import annotations

import asyncio
from functools import partial

import pytest

from services.audit.application.findings import Verification
from services.audit.application.verification import Progress
from services.audit.application.verification_runs import VerificationRuns


def note(seen: list[tuple[int, int]], done: int, of: int) -> None:
    seen.append((done, of))


class SlowVerification:
    """Counts its runs; each reports progress, then waits to be let finish."""

    def __init__(self) -> None:
        self.runs = 0
        self.finish = asyncio.Event()
        self.cancelled = 0

    async def __call__(self, against_log: bool, progress: Progress) -> Verification:
        self.runs += 1
        progress(1, 2)
        try:
            await self.finish.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        progress(2, 2)
        return Verification(entries=2)


async def test_who_asks_while_one_runs_waits_for_its_result_and_sees_its_progress() -> None:
    verification = SlowVerification()
    runs = VerificationRuns(verification)
    seen: list[list[tuple[int, int]]] = [[], [], []]
    waiting = [asyncio.create_task(runs.result(True, partial(note, mine))) for mine in seen[:2]]
    await asyncio.sleep(0)
    waiting.append(asyncio.create_task(runs.result(True, lambda n, of: seen[2].append((n, of)))))
    await asyncio.sleep(0)
    assert runs.running(True) and verification.runs == 1
    verification.finish.set()
    results = await asyncio.gather(*waiting)
    assert {r.entries for r in results} == {2} and verification.runs == 1, "one pass for all three"
    assert seen[0][-1] == seen[1][-1] == seen[2][-1] == (2, 2)
    assert not runs.running(True)


async def test_a_verification_nobody_waits_for_any_more_stops() -> None:
    verification = SlowVerification()
    runs = VerificationRuns(verification)
    first, second = (asyncio.create_task(runs.result(False)) for _ in range(2))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    assert verification.cancelled == 0, "the other still waits for it"
    second.cancel()
    for gone in (first, second):
        with pytest.raises(asyncio.CancelledError):
            await gone
    await asyncio.sleep(0)
    assert verification.cancelled == 1 and not runs.running(False)
