"""What routes depend on, read from the runtime that ``bootstrap`` wired into ``app.state``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Path, Request

from services.tasks.application.service import TaskService
from services.tasks.bootstrap import TasksRuntime
from shared.contract.types import AGGREGATE_ID_PATTERN
from shared.domain.projection import Projection
from shared.http.problems import Problem
from shared.http.service import runtime_of

runtime = runtime_of(TasksRuntime)


async def task_service(request: Request) -> TaskService:
    """The application service, once the state is rebuilt from the log (503 before)."""
    tasks = await runtime(request)
    if tasks.rebuilt is None:
        raise Problem(503, "still rebuilding state from the log", headers={"Retry-After": "2"})
    return tasks.service


async def projection(request: Request) -> Projection:
    return (await task_service(request)).projection


async def now(request: Request) -> datetime:
    """The service's clock (a test may set it)."""
    return (await runtime(request)).service.clock()


Service = Annotated[TaskService, Depends(task_service)]
Now = Annotated[datetime, Depends(now)]
State = Annotated[Projection, Depends(projection)]
AggregateIdPath = Annotated[str, Path(pattern=AGGREGATE_ID_PATTERN, max_length=128, examples=["task-5f0c2a9e1b3d4c6a"])]
