"""``evolve``'s table and its cheap copy: the state after an event is what pydantic's own copy
would have made, still frozen, and an event that does not fit its aggregate is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.contract import catalog as c
from shared.contract.codes import CooperationField, Department, TaskHealth
from shared.contract.envelope import new_event
from shared.domain.evolve import DOMAIN_TYPES, EvolveError, evolve
from shared.domain.state import Task, replaced

CREATED = datetime(2026, 3, 1, tzinfo=UTC)


def a_task() -> Task:
    created = new_event(
        c.TaskCreated(task_id="t-1", plan_id="p-1", title="Port", field=CooperationField.TRADE, due=CREATED),
        actor="u-sc",
        aggregateversion=1,
        time=CREATED,
    )
    task = evolve(None, created)
    assert isinstance(task, Task)
    return task


@given(
    percent=st.integers(0, 100),
    note=st.text(max_size=20),
    health=st.sampled_from(TaskHealth),
    lead=st.sampled_from(Department),
)
def test_a_replaced_state_is_what_model_copy_makes(
    percent: int, note: str, health: TaskHealth, lead: Department
) -> None:
    task = a_task()
    changes = {"percent": percent, "progress_note": note, "health": health, "lead_department": lead, "version": 2}
    ours, pydantics = replaced(task, changes), task.model_copy(update=changes)
    assert ours == pydantics
    assert ours.model_dump() == pydantics.model_dump()
    assert ours.model_fields_set == pydantics.model_fields_set
    assert hash(ours) == hash(pydantics)
    assert task.percent == 0 and task.version == 1
    with pytest.raises(ValidationError):
        ours.percent = 5  # type: ignore[misc]  # frozen: the assignment itself is what is tested


def test_every_domain_type_starts_or_changes_an_aggregate_and_others_are_refused() -> None:
    task = a_task()
    progress = new_event(
        c.TaskProgressReported(task_id="t-1", percent=40, note="piling"), actor="u", aggregateversion=2
    )
    after = evolve(task, progress)
    assert isinstance(after, Task)
    assert (after.percent, after.version, after.updated_at) == (40, 2, progress.time)
    assert [p.percent for p in after.recent_progress] == [40]
    assert c.TaskProgressReported.event_type in DOMAIN_TYPES and c.TaskCreated.event_type in DOMAIN_TYPES
    resolved = new_event(
        c.IssueResolved(issue_id="t-1", task_id="t-1", resolution="done"), actor="u", aggregateversion=2
    )
    with pytest.raises(EvolveError, match="does not apply to Task"):
        evolve(task, resolved)
    with pytest.raises(EvolveError, match="cannot start"):
        evolve(None, progress)
