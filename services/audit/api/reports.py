"""What the trail says: a task as of any moment, and who was responsible for what."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.audit import reports
from services.audit.api.dependencies import Moment, Store, TaskIdPath, everything
from shared.auth import can_read
from shared.domain.state import Task
from shared.http.problems import Problem, problem_responses
from shared.http.service import Authenticated

router = APIRouter(tags=["audit"])


class Responsibility(BaseModel):
    as_of: str
    departments: dict[str, dict[str, int]]


@router.get(
    "/v1/audit/tasks/{task_id}/state",
    response_model=Task,
    responses=problem_responses(401, 404, 422),
    summary="A task's state as of a moment, replayed with the tasks service's own evolve",
)
async def task_state(task_id: TaskIdPath, actor: Authenticated, store: Store, as_of: Moment = None) -> JSONResponse:
    task = await reports.replay_task(store, task_id, as_of)
    if task is None or not can_read(actor, (task.lead_department, *task.supporting_departments)):
        raise Problem(404, f"no task {task_id} that you may see" + (f" as of {as_of.isoformat()}" if as_of else ""))
    return JSONResponse(task.model_dump(mode="json"), headers={"ETag": f'"{task.version}"'})


@router.get(
    "/v1/audit/responsibility",
    response_model=Responsibility,
    responses=problem_responses(401, 403),
    summary="Per department: assigned (lead, supporting), acts, late, escalated",
)
async def responsibility(actor: Authenticated, store: Store) -> dict[str, Any]:
    everything(actor)
    now = datetime.now(UTC)
    return {"as_of": now.isoformat(), "departments": await reports.responsibility(store, now)}
