"""With several writers, a command may refer to an aggregate that another writer appended (a
new task's plan): it is refused on this instance's view only once that view has read the log
to its end. Found by the cluster test: a task created right after its plan, decided by the
other instance before it had read the plan, was refused with 404 "no approved plan"."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.tasks.adapters.event_log import InMemoryEventLog
from services.tasks.application.service import TaskService
from services.tasks.application.view import LogView, Placement
from services.tasks.domain import commands as cmd
from shared.auth import Actor
from shared.contract.codes import CooperationField, Department, Role
from shared.contract.envelope import AnyEvent
from shared.contract.topics import EVENTS
from shared.domain.refusals import NotFound

STATE_COUNCIL = Actor(user="u-sc", department=Department("SC"), roles=frozenset({Role.APPROVER}))
JILIN = Actor(user="u-jilin", department=Department("JILIN"), roles=frozenset({Role.IMPLEMENTER}))


class BehindTheOtherWriter:
    """Decides every partition here; what the other writer appended reaches the view only
    when the view reads the log to its end."""

    def __init__(self, view: LogView, appended_elsewhere: list[AnyEvent]) -> None:
        self.view, self.appended_elsewhere, self.read_to_the_end = view, appended_elsewhere, 0

    def partition_of(self, aggregate_id: str) -> int:
        return 0

    def owns(self, partition: int) -> bool:
        return True

    def writes(self, partition: int) -> bool:
        return True

    async def caught_up(self) -> None:
        self.read_to_the_end += 1
        for offset, event in enumerate(self.appended_elsewhere):
            self.view.take(event, Placement(EVENTS, 1, offset))
        self.appended_elsewhere = []


async def plan_approved_elsewhere(plan_id: str) -> list[AnyEvent]:
    other = TaskService(log := InMemoryEventLog(), LogView())
    await other.execute(cmd.ApprovePlan(plan_id=plan_id, title="Overall Plan"), STATE_COUNCIL)
    return log.events


def new_task(plan_id: str) -> cmd.CreateTask:
    return cmd.CreateTask(
        task_id="task-1",
        plan_id=plan_id,
        title="Trade facilitation",
        field=CooperationField.TRADE,
        lead_department=Department("JILIN"),
        due=datetime(2030, 1, 1, tzinfo=UTC),
    )


async def test_a_task_whose_plan_another_writer_appended_is_created_once_the_view_has_read_it() -> None:
    view = LogView()
    ownership = BehindTheOtherWriter(view, await plan_approved_elsewhere("plan-1"))
    here = TaskService(log := InMemoryEventLog(), view, ownership=ownership)
    answer = await here.execute(new_task("plan-1"), JILIN)
    assert ownership.read_to_the_end == 1
    assert [e.type for e in log.events] == ["org.policytrack.task.created.v1", "org.policytrack.task.assigned.v1"]
    assert answer.body["id"] == "task-1"


async def test_a_plan_that_is_nowhere_on_the_log_is_still_refused() -> None:
    view = LogView()
    ownership = BehindTheOtherWriter(view, [])
    here = TaskService(log := InMemoryEventLog(), view, ownership=ownership)
    with pytest.raises(NotFound, match="no approved plan plan-2"):
        await here.execute(new_task("plan-2"), JILIN)
    assert ownership.read_to_the_end == 1 and log.events == []
