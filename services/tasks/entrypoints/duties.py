"""What the caller may do and must do: a task's actions, the plans' actions and the
department's to-do list (待办), each action with the route that does it and the version its
If-Match names. The dashboard shows a form for each; the rules stay the tasks service's."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from services.tasks.application.queries import readable_task
from services.tasks.domain.duties import Action, Duty, duties, plan_actions, task_actions
from services.tasks.entrypoints.dependencies import AggregateIdPath, Now, State, runtime
from services.tasks.entrypoints.writes import ROUTES
from shared.http.problems import Problem, problem_responses
from shared.http.service import Authenticated

router = APIRouter(tags=["duties"])
PATHS = {route.command.name: route.path for route in ROUTES}


class ActionOut(BaseModel):
    command: str
    method: str = "POST"
    path: str
    given: dict[str, str]
    """Fields of the body the action fixes (the plan a task is created in): sent as they are."""
    key: str
    """What tells this action apart from others of the same command: its last id."""
    if_match: int | None
    """The target's version to send as If-Match; none for a command that creates its subject."""
    task_id: str | None
    about: str


class ActionList(BaseModel):
    items: list[ActionOut]


class DutyOut(BaseModel):
    kind: str
    task_id: str | None
    title: str
    due: datetime | None
    overdue: bool
    action: ActionOut


class DutyList(BaseModel):
    department: str | None
    items: list[DutyOut]


def action_out(action: Action) -> dict[str, Any]:
    template, ids = PATHS[action.command], dict(action.ids)
    return {
        "command": action.command,
        "path": template.format(**ids),
        "given": {name: value for name, value in ids.items() if f"{{{name}}}" not in template},
        "key": action.ids[-1][1] if action.ids else "",
        "if_match": action.version or None,
        "task_id": action.task_id,
        "about": action.about,
    }


def duty_out(duty: Duty) -> dict[str, Any]:
    return {
        "kind": duty.kind,
        "task_id": duty.task_id,
        "title": duty.title,
        "due": duty.due,
        "overdue": duty.overdue,
        "action": action_out(duty.action),
    }


@router.get(
    "/v1/tasks/{task_id}/actions",
    response_model=ActionList,
    responses=problem_responses(401, 404, 422, 503),
    summary="What you may do now on the task and its issues, approvals and support requests",
)
async def get_task_actions(task_id: AggregateIdPath, actor: Authenticated, state: State, now: Now) -> dict[str, Any]:
    if readable_task(state.task(task_id), actor) is None:
        raise Problem(404, f"no task {task_id} that you may see")
    return {"items": [action_out(action) for action in task_actions(state, actor, task_id, now)]}


@router.get(
    "/v1/actions",
    response_model=ActionList,
    responses=problem_responses(401, 503),
    summary="What you may do now on the plans: approve one, add a task to one, evaluate one",
)
async def get_plan_actions(actor: Authenticated, state: State, now: Now) -> dict[str, Any]:
    return {"items": [action_out(action) for action in plan_actions(state, actor, now)]}


@router.get(
    "/v1/todo",
    response_model=DutyList,
    responses=problem_responses(401, 503),
    summary="Your department's to-do list (待办), most urgent first",
)
async def get_todo(request: Request, actor: Authenticated, state: State, now: Now) -> dict[str, Any]:
    report_every = (await runtime(request)).settings.progress_report_interval
    return {
        "department": actor.department,
        "items": [duty_out(duty) for duty in duties(state, actor, now, report_every=report_every)],
    }
