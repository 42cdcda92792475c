"""The tasks service's HTTP edge: the fixed routes of DESIGN.md section 6, thin over handlers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Query, Request
from fastapi.responses import JSONResponse, Response

from services.tasks import commands as cmd
from services.tasks.bootstrap import TasksRuntime
from services.tasks.decide import DomainError
from services.tasks.handlers import StaleVersion, TaskFilter, list_tasks, new_id, task_history, visible
from services.tasks.store import Fenced, LogUnavailable
from shared.auth import Actor
from shared.contract.codec import to_structured
from shared.contract.codes import CooperationField, Department
from shared.domain.state import Aggregate, TaskStatus
from shared.http.preconditions import parse_if_match
from shared.http.problems import Problem
from shared.http.service import Authenticated, create_service_app

DESCRIPTION = """The command side of policytrack: departmental systems create and assign tasks, schedule
milestones, report progress and issues, request approvals and record evaluations. Every
write is checked against the division of responsibilities and appended to Kafka before it
is answered. Writes accept `If-Match: <version>` (412 when stale) and `Idempotency-Key`."""


def create_app(runtime: TasksRuntime) -> Any:
    app = create_service_app("tasks", runtime, title="policytrack tasks", description=DESCRIPTION)
    service = runtime.service
    projection = service.projection

    async def write(request: Request, actor: Actor, command: cmd.Command) -> JSONResponse:
        if runtime.rebuilt is None:
            raise Problem(503, "still rebuilding state from the log", headers={"Retry-After": "2"})
        try:
            answer = await service.execute(
                command, actor, if_match=_if_match(request), idempotency_key=request.headers.get("idempotency-key"),
                correlation_id=request.headers.get("x-correlation-id"),
            )  # fmt: skip
        except DomainError as error:
            raise Problem(error.status, error.detail, title=error.title, field=error.field) from error
        except StaleVersion as error:
            raise Problem(412, str(error), current_version=error.current) from error
        except (Fenced, LogUnavailable) as error:
            raise Problem(503, str(error), headers={"Retry-After": "5"}) from error
        headers = {"ETag": f'"{answer.body["version"]}"'} if "version" in answer.body else {}
        return JSONResponse(answer.body, status_code=answer.status, headers=headers)

    def readable(aggregate: Aggregate | None, actor: Actor, what: str, aggregate_id: str) -> Aggregate:
        task = projection.task(getattr(aggregate, "task_id", "")) if aggregate is not None else None
        if aggregate is None or task is None or not visible(task, actor):
            raise Problem(404, f"no {what} {aggregate_id} that you may see")
        return aggregate

    def state_response(aggregate: Aggregate) -> JSONResponse:
        return JSONResponse(aggregate.model_dump(mode="json"), headers={"ETag": f'"{aggregate.version}"'})

    # --- plans and tasks ---------------------------------------------------------------------

    @app.post("/v1/plans", status_code=201, tags=["plans"], summary="The State Council approves a plan")
    async def approve_plan(request: Request, actor: Authenticated, body: cmd.PlanBody) -> JSONResponse:
        return await write(request, actor, cmd.ApprovePlan(plan_id=new_id("plan"), **body.model_dump()))

    @app.get("/v1/plans/{plan_id}", tags=["plans"])
    async def get_plan(plan_id: str, actor: Authenticated) -> JSONResponse:
        plan = projection.plan(plan_id)
        if plan is None:
            raise Problem(404, f"no plan {plan_id}")
        return state_response(plan)

    @app.post("/v1/tasks", status_code=201, tags=["tasks"], summary="Create a task and assign its departments")
    async def create_task(request: Request, actor: Authenticated, body: cmd.TaskBody) -> JSONResponse:
        return await write(request, actor, cmd.CreateTask(task_id=new_id("task"), **body.model_dump()))

    @app.get("/v1/tasks", tags=["tasks"], summary="Tasks you may see, filtered, in creation order")
    async def get_tasks(
        actor: Authenticated,
        department: Department | None = None,
        field: CooperationField | None = None,
        status: TaskStatus | None = None,
        overdue: bool | None = None,
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        try:
            page, next_cursor = list_tasks(projection, actor, TaskFilter(department, field, status, overdue),
                                           service.clock(), limit=limit, cursor=cursor)  # fmt: skip
        except ValueError as error:
            raise Problem(422, str(error), field="cursor") from error
        return {"items": [task.model_dump(mode="json") for task in page], "next_cursor": next_cursor}

    @app.get("/v1/tasks/{task_id}", tags=["tasks"], summary="A task's current state, with its version as ETag")
    async def get_task(task_id: str, actor: Authenticated) -> JSONResponse:
        return state_response(readable(projection.task(task_id), actor, "task", task_id))

    @app.get("/v1/tasks/{task_id}/events", tags=["tasks"], summary="Every event about the task, oldest first")
    async def get_task_events(task_id: str, actor: Authenticated) -> Response:
        readable(projection.task(task_id), actor, "task", task_id)
        events = task_history(projection, task_id)
        return Response(b"[" + b",".join(map(to_structured, events)) + b"]", media_type="application/json")

    @app.post("/v1/tasks/{task_id}/milestones", status_code=201, tags=["milestones"])
    async def schedule_milestone(task_id: str, request: Request, actor: Authenticated,
                                 body: cmd.MilestoneBody) -> JSONResponse:  # fmt: skip
        command = cmd.ScheduleMilestone(task_id=task_id, milestone_id=new_id("ms"), **body.model_dump())
        return await write(request, actor, command)

    @app.post("/v1/tasks/{task_id}/milestones/{milestone_id}/met", tags=["milestones"])
    async def mark_milestone_met(task_id: str, milestone_id: str, request: Request, actor: Authenticated,
                                 body: Annotated[cmd.EmptyBody | None, Body()] = None) -> JSONResponse:  # fmt: skip
        return await write(request, actor, cmd.MarkMilestoneMet(task_id=task_id, milestone_id=milestone_id))

    @app.post("/v1/tasks/{task_id}/progress", tags=["tasks"])
    async def report_progress(task_id: str, request: Request, actor: Authenticated,
                              body: cmd.ProgressBody) -> JSONResponse:  # fmt: skip
        return await write(request, actor, cmd.ReportProgress(task_id=task_id, **body.model_dump()))

    @app.post("/v1/tasks/{task_id}/complete", tags=["tasks"])
    async def complete_task(task_id: str, request: Request, actor: Authenticated,
                            body: Annotated[cmd.CompletionBody | None, Body()] = None) -> JSONResponse:  # fmt: skip
        note = body.note if body else ""
        return await write(request, actor, cmd.CompleteTask(task_id=task_id, note=note))

    @app.post("/v1/tasks/{task_id}/cancel", tags=["tasks"])
    async def cancel_task(task_id: str, request: Request, actor: Authenticated,
                          body: cmd.CancellationBody) -> JSONResponse:  # fmt: skip
        return await write(request, actor, cmd.CancelTask(task_id=task_id, **body.model_dump()))

    @app.post("/v1/tasks/{task_id}/reassign", tags=["tasks"])
    async def reassign_task(task_id: str, request: Request, actor: Authenticated,
                            body: cmd.ReassignmentBody) -> JSONResponse:  # fmt: skip
        return await write(request, actor, cmd.ReassignTask(task_id=task_id, **body.model_dump()))

    @app.post("/v1/tasks/{task_id}/deadline", tags=["tasks"])
    async def change_deadline(task_id: str, request: Request, actor: Authenticated,
                              body: cmd.DeadlineBody) -> JSONResponse:  # fmt: skip
        return await write(request, actor, cmd.ChangeDeadline(task_id=task_id, **body.model_dump()))

    # --- issues, approvals, evaluations -------------------------------------------------------

    @app.post("/v1/tasks/{task_id}/issues", status_code=201, tags=["issues"])
    async def report_issue(task_id: str, request: Request, actor: Authenticated,
                           body: cmd.IssueBody) -> JSONResponse:  # fmt: skip
        command = cmd.ReportIssue(task_id=task_id, issue_id=new_id("issue"), **body.model_dump())
        return await write(request, actor, command)

    @app.get("/v1/issues/{issue_id}", tags=["issues"])
    async def get_issue(issue_id: str, actor: Authenticated) -> JSONResponse:
        return state_response(readable(projection.issue(issue_id), actor, "issue", issue_id))

    @app.post("/v1/issues/{issue_id}/escalate", tags=["issues"],
              summary="The supervisor (NDRC) reports a major issue on to the State Council")  # fmt: skip
    async def escalate_issue(issue_id: str, request: Request, actor: Authenticated,
                             body: Annotated[cmd.EscalationBody | None, Body()] = None) -> JSONResponse:  # fmt: skip
        reason = body.reason if body else ""
        return await write(request, actor, cmd.EscalateIssue(issue_id=issue_id, reason=reason))

    @app.post("/v1/issues/{issue_id}/resolve", tags=["issues"])
    async def resolve_issue(issue_id: str, request: Request, actor: Authenticated,
                            body: Annotated[cmd.ResolutionBody | None, Body()] = None) -> JSONResponse:  # fmt: skip
        resolution = body.resolution if body else ""
        return await write(request, actor, cmd.ResolveIssue(issue_id=issue_id, resolution=resolution))

    @app.post("/v1/tasks/{task_id}/approvals", status_code=201, tags=["approvals"],
              summary="Submit an important policy or major construction project for approval")  # fmt: skip
    async def request_approval(task_id: str, request: Request, actor: Authenticated,
                               body: cmd.ApprovalBody) -> JSONResponse:  # fmt: skip
        command = cmd.RequestApproval(task_id=task_id, approval_id=new_id("approval"), **body.model_dump())
        return await write(request, actor, command)

    @app.get("/v1/approvals/{approval_id}", tags=["approvals"])
    async def get_approval(approval_id: str, actor: Authenticated) -> JSONResponse:
        return state_response(readable(projection.approval(approval_id), actor, "approval", approval_id))

    @app.post("/v1/approvals/{approval_id}/decision", tags=["approvals"], summary="The State Council decides")
    async def decide_approval(approval_id: str, request: Request, actor: Authenticated,
                              body: cmd.DecisionBody) -> JSONResponse:  # fmt: skip
        return await write(request, actor, cmd.DecideApproval(approval_id=approval_id, **body.model_dump()))

    @app.post("/v1/tasks/{task_id}/evaluations", status_code=201, tags=["evaluations"],
              summary="The supervisor (NDRC) records an evaluation of the task's implementation")  # fmt: skip
    async def record_evaluation(task_id: str, request: Request, actor: Authenticated,
                                body: cmd.EvaluationBody) -> JSONResponse:  # fmt: skip
        command = cmd.RecordEvaluation(task_id=task_id, evaluation_id=new_id("evaluation"), **body.model_dump())
        return await write(request, actor, command)

    return app


def _if_match(request: Request) -> int | None:
    header = request.headers.get("if-match")
    if header is None:
        return None
    try:
        return parse_if_match(header)
    except ValueError as error:
        raise Problem(422, f"If-Match {error}", field="If-Match") from error
