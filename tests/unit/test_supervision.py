"""Background loops that fail are restarted, say why on readiness while failing, and recover."""

from __future__ import annotations

import asyncio

from shared.supervision import BackgroundWork, Backoff, Health


async def test_a_failing_loop_reports_why_and_recovers_without_a_restart() -> None:
    work = BackgroundWork(Backoff(base_seconds=0.01, max_seconds=0.02))
    store_up = asyncio.Event()
    rounds: list[str] = []

    async def ingest(health: Health) -> None:
        while True:
            if not store_up.is_set():
                raise ConnectionError("database unavailable")
            rounds.append("ok")
            health.healthy()
            if await work.sleep(0.01):
                return

    work.start("ingest", ingest)
    for _ in range(200):
        ready, details = work.readiness()
        if details["ingest"].get("failures", 0) >= 3:
            break
        await asyncio.sleep(0.01)
    assert not ready
    assert details["ingest"]["reason"] == "ConnectionError: database unavailable"
    store_up.set()
    for _ in range(200):
        if work.readiness()[0]:
            break
        await asyncio.sleep(0.01)
    assert work.readiness() == (True, {"ingest": {"ok": True}})
    assert rounds
    await work.stop()


async def test_a_loop_that_ends_on_its_own_is_a_failure_and_is_run_again() -> None:
    work = BackgroundWork(Backoff(base_seconds=0.01, max_seconds=0.01))
    runs = 0

    async def quits(health: Health) -> None:
        nonlocal runs
        runs += 1

    work.start("quitter", quits)
    for _ in range(200):
        if runs >= 3:
            break
        await asyncio.sleep(0.01)
    ready, details = work.readiness()
    assert runs >= 3 and not ready and details["quitter"]["reason"] == "ended unexpectedly"
    await work.stop()


def test_backoff_is_capped() -> None:
    backoff = Backoff(base_seconds=0.5, max_seconds=30)
    assert all(0.25 <= backoff.delay(1) <= 0.5 for _ in range(50))
    assert all(15 <= backoff.delay(40) <= 30 for _ in range(50))


async def test_stopping_cancels_a_reader_only_after_the_loops_that_wait_on_it() -> None:
    """A reader that only reads is cancelled on stop, but not before the loops that may be
    waiting for its answer (an owner taking a partition waits for the log's reader) are done."""
    work = BackgroundWork()
    asked: asyncio.Queue[asyncio.Future[None]] = asyncio.Queue()
    finished: list[str] = []

    async def reader(health: Health) -> None:
        while True:  # reads until cancelled; answers whoever asks
            (await asked.get()).set_result(None)

    async def owner(health: Health) -> None:
        await work.stopping.wait()
        answer = asyncio.get_running_loop().create_future()
        await asked.put(answer)
        await answer
        finished.append("owner")

    work.start("reader", reader, interruptible=True)
    work.start("owner", owner)
    await asyncio.wait_for(work.stop(timeout=5), timeout=2)
    assert finished == ["owner"]
