"""The read routes: plans, tasks (filtered, paged), a task's history, issues and approvals,
each bounded by what the caller may see."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from services.tasks.application.queries import TaskFilter, list_tasks, readable, readable_request, readable_task
from services.tasks.entrypoints.dependencies import AggregateIdPath, Now, Service, State, runtime
from shared.contract.codec import to_structured
from shared.contract.codes import CooperationField, Department, TaskHealth
from shared.cursor import BadCursor
from shared.domain.projection import Projection
from shared.domain.state import Aggregate, Approval, Issue, Plan, SupportRequest, Task, TaskStatus
from shared.http.problems import Problem, problem_responses
from shared.http.service import Authenticated

router = APIRouter()
READ_PROBLEMS = problem_responses(401, 404, 412, 422, 503)
REFLECT_SECONDS = 5.0


class TaskPage(BaseModel):
    items: list[Task]
    next_cursor: str | None


MinVersion = Annotated[
    int | None,
    Query(
        ge=1,
        le=2**31,
        description="Answer only with this version of the aggregate or a later one (a write's ETag). With "
        "several instances a read may reach one that has not yet read the write back from the log: it waits "
        f"up to {REFLECT_SECONDS:g} s, then answers 503 with Retry-After. A single instance holds every "
        "write it answered, so it answers 412 at once for a version it does not have.",
    ),
]


async def reflection_wait(request: Request) -> float:
    """How long a read may wait for a version: only an instance that follows other instances'
    appends can see one arrive."""
    return REFLECT_SECONDS if (await runtime(request)).partitioned is not None else 0.0


@dataclass(frozen=True)
class Reflection:
    """The version a read must reflect, if it names one, and how long it may wait for it."""

    min_version: int | None
    wait: float

    async def reached(self, state: Projection, aggregate_id: str) -> None:
        """Returns once the state holds the version, or after waiting for it in vain."""
        deadline = time.monotonic() + self.wait
        while self.min_version is not None and time.monotonic() < deadline:
            current = state.aggregates.get(aggregate_id)
            if current is not None and current.version >= self.min_version:
                return
            await asyncio.sleep(0.02)

    def response(self, aggregate: Aggregate) -> JSONResponse:
        """The aggregate with its version as ETag, if it is the version asked for or later."""
        if self.min_version is not None and aggregate.version < self.min_version:
            if self.wait:
                raise Problem(503, f"version {self.min_version} is not read here yet", headers={"Retry-After": "1"})
            raise Problem(412, f"version {self.min_version} does not exist; the current version is {aggregate.version}")
        return JSONResponse(aggregate.model_dump(mode="json"), headers={"ETag": f'"{aggregate.version}"'})


async def reflection(wait: Annotated[float, Depends(reflection_wait)], min_version: MinVersion = None) -> Reflection:
    return Reflection(min_version, wait)


Reflected = Annotated[Reflection, Depends(reflection)]


def found(aggregate: Aggregate | None, what: str, aggregate_id: str) -> Aggregate:
    if aggregate is None:
        raise Problem(404, f"no {what} {aggregate_id} that you may see")
    return aggregate


@router.get(
    "/v1/plans/{plan_id}",
    tags=["plans"],
    response_model=Plan,
    responses=READ_PROBLEMS,
    summary="A plan and its version",
)
async def get_plan(plan_id: AggregateIdPath, actor: Authenticated, state: State, reflection: Reflected) -> JSONResponse:
    await reflection.reached(state, plan_id)
    return reflection.response(found(state.plan(plan_id), "plan", plan_id))


@router.get(
    "/v1/tasks",
    tags=["tasks"],
    response_model=TaskPage,
    responses=READ_PROBLEMS,
    summary="Tasks you may see, filtered, in creation order",
)
async def get_tasks(
    actor: Authenticated,
    state: State,
    now: Now,
    department: Department | None = None,
    field: CooperationField | None = None,
    status: Annotated[
        TaskStatus | TaskHealth | None,
        Query(description="A lifecycle status, or a health (the same as `health=`)"),
    ] = None,
    overdue: bool | None = None,
    health: TaskHealth | None = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    if isinstance(status, TaskHealth):
        if health not in (None, status):
            raise Problem(422, f"status={status} and health={health} cannot both hold", field="health")
        status, health = None, status
    try:
        page, next_cursor = list_tasks(
            state, actor, TaskFilter(department, field, status, overdue, health), now, limit=limit, cursor=cursor
        )
    except BadCursor as error:
        raise Problem(422, str(error), field="cursor") from error
    return {"items": [task.model_dump(mode="json") for task in page], "next_cursor": next_cursor}


@router.get(
    "/v1/tasks/{task_id}",
    tags=["tasks"],
    response_model=Task,
    responses=READ_PROBLEMS,
    summary="A task's current state, with its version as ETag",
)
async def get_task(task_id: AggregateIdPath, actor: Authenticated, state: State, reflection: Reflected) -> JSONResponse:
    await reflection.reached(state, task_id)
    return reflection.response(found(readable_task(state.task(task_id), actor), "task", task_id))


@router.get(
    "/v1/tasks/{task_id}/events",
    tags=["tasks"],
    response_model=list[dict[str, Any]],
    responses=READ_PROBLEMS,
    summary="Every event about the task, oldest first",
)
async def get_task_events(task_id: AggregateIdPath, actor: Authenticated, service: Service) -> Response:
    found(readable_task(service.projection.task(task_id), actor), "task", task_id)
    events = await service.view.history.of(task_id)
    return Response(b"[" + b",".join(map(to_structured, events)) + b"]", media_type="application/json")


@router.get(
    "/v1/issues/{issue_id}",
    tags=["issues"],
    response_model=Issue,
    responses=READ_PROBLEMS,
    summary="An issue and what became of it",
)
async def get_issue(
    issue_id: AggregateIdPath, actor: Authenticated, state: State, reflection: Reflected
) -> JSONResponse:
    await reflection.reached(state, issue_id)
    return reflection.response(found(readable(state, state.issue(issue_id), actor), "issue", issue_id))


@router.get(
    "/v1/approvals/{approval_id}",
    tags=["approvals"],
    response_model=Approval,
    responses=READ_PROBLEMS,
    summary="An approval request and its decision",
)
async def get_approval(
    approval_id: AggregateIdPath,
    actor: Authenticated,
    state: State,
    reflection: Reflected,
) -> JSONResponse:
    await reflection.reached(state, approval_id)
    return reflection.response(found(readable(state, state.approval(approval_id), actor), "approval", approval_id))


@router.get(
    "/v1/support-requests/{request_id}",
    tags=["support"],
    response_model=SupportRequest,
    responses=READ_PROBLEMS,
    summary="A support request and each asked department's answer",
)
async def get_support_request(
    request_id: AggregateIdPath,
    actor: Authenticated,
    state: State,
    reflection: Reflected,
) -> JSONResponse:
    await reflection.reached(state, request_id)
    request = readable_request(state, state.support_request(request_id), actor)
    return reflection.response(found(request, "support request", request_id))
