"""Commands on one aggregate are decided one after another against the state the earlier ones
will make, and written together: a slow write does not serialize the callers. In process,
against an in-memory log whose writes wait until released."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from services.tasks.adapters.event_log import InMemoryEventLog
from tests.conftest import JILIN, NAO, eventually, plan_and_task
from tests.fakes import InProcessTasks, SlowLog, in_process_tasks

CALLERS = 32


@asynccontextmanager
async def a_task_behind_a_held_log() -> AsyncIterator[tuple[InProcessTasks, SlowLog, str, int]]:
    """A task, made while the log writes at once; from then on each write waits for ``log.release``."""
    log = SlowLog()
    log.release.set()
    async with in_process_tasks(log) as tasks:
        task = await plan_and_task(tasks.client)
        version = (await tasks.client.get(f"/v1/tasks/{task}", headers=NAO)).json()["version"]
        log.release.clear()
        yield tasks, log, task, version


async def reports_in_flight(
    tasks: InProcessTasks, log: SlowLog, task: str, count: int
) -> list[asyncio.Task[httpx.Response]]:
    """``count`` progress reports sent at once, each decided and waiting for the held log."""
    submitted = log.submitted
    sent = [
        asyncio.create_task(
            tasks.client.post(f"/v1/tasks/{task}/progress", headers=JILIN, json={"percent": 50, "note": f"report {n}"})
        )
        for n in range(count)
    ]

    async def all_submitted() -> bool | None:
        await asyncio.sleep(0.01)
        return log.submitted - submitted == count or None

    await eventually(all_submitted, timeout=10, what="every command decided while the log is held")
    return sent


async def test_commands_on_one_task_are_all_decided_while_the_first_is_still_being_written() -> None:
    async with a_task_behind_a_held_log() as (tasks, log, task, version):
        sent = await reports_in_flight(tasks, log, task, CALLERS)
        assert not any(request.done() for request in sent), "nobody is answered before the log has the events"
        log.release.set()
        answers = [await request for request in sent]
    assert [a.status_code for a in answers] == [200] * CALLERS
    assert sorted(a.json()["version"] for a in answers) == list(range(version + 1, version + CALLERS + 1))
    on_log = [e for e in log.events if e.subject == task][-CALLERS:]
    assert [e.aggregateversion for e in on_log] == list(range(version + 1, version + CALLERS + 1)), "in version order"
    notes = {e.aggregateversion: getattr(e.data, "note", None) for e in on_log}
    assert len(set(notes.values())) == CALLERS, "each command once"


async def test_a_failed_write_fails_what_was_decided_on_it_and_leaves_no_gap() -> None:
    async with a_task_behind_a_held_log() as (tasks, log, task, version):
        appended = len(log.events)
        sent = await reports_in_flight(tasks, log, task, 3)
        log.unavailable = True
        log.release.set()
        answers = [await request for request in sent]
        assert [a.status_code for a in answers] == [503] * 3, [a.text for a in answers]
        assert len(log.events) == appended, "nothing decided on the failed write reaches the log"
        log.unavailable = False
        after = await tasks.client.post(f"/v1/tasks/{task}/progress", headers=JILIN, json={"percent": 9})
        assert (after.status_code, after.json()["version"]) == (200, version + 1), "decided on the committed state"
        current = await tasks.client.get(f"/v1/tasks/{task}", headers=NAO)
        assert (current.json()["version"], current.json()["percent"]) == (version + 1, 9)


async def test_if_match_is_checked_against_the_state_the_earlier_commands_will_make() -> None:
    async with a_task_behind_a_held_log() as (tasks, log, task, version):
        headers = {**JILIN, "If-Match": f'"{version}"'}
        both = [
            asyncio.create_task(tasks.client.post(f"/v1/tasks/{task}/progress", headers=headers, json={"percent": p}))
            for p in (10, 20)
        ]
        await asyncio.sleep(0.05)
        log.release.set()
        statuses = sorted([(await request).status_code for request in both])
    assert statuses == [200, 412], "exactly one of two writes with the same If-Match wins"


async def test_a_restart_after_pipelined_writes_has_the_same_state() -> None:
    async with a_task_behind_a_held_log() as (tasks, log, task, _):
        sent = await reports_in_flight(tasks, log, task, 8)
        log.release.set()
        await asyncio.gather(*sent)
        before = (await tasks.client.get(f"/v1/tasks/{task}", headers=NAO)).json()
    plain = InMemoryEventLog()
    plain.events = list(log.events)
    async with in_process_tasks(plain) as restarted:
        assert (await restarted.client.get(f"/v1/tasks/{task}", headers=NAO)).json() == before
