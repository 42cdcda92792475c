"""The command routes, made from one table: each row is a path, the command it sends, the body
it accepts and how it answers. Every write accepts ``If-Match`` and ``Idempotency-Key``."""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from services.tasks.adapters.forwarding import ForwardTimedOut
from services.tasks.application.answers import Answer, NotOwner
from services.tasks.application.service import IdempotencyKey, new_id
from services.tasks.domain import commands as cmd
from services.tasks.entrypoints.dependencies import AggregateIdPath, Service, runtime
from shared.auth import Actor
from shared.http.idempotency import idempotency_key
from shared.http.links import fills
from shared.http.preconditions import parse_if_match
from shared.http.problems import Problem, field_errors, problem_responses
from shared.http.service import Authenticated
from shared.http.signatures import signed_act
from shared.provenance.acts import SignedAct

router = APIRouter()


class WriteAnswer(BaseModel):
    """What a write answers: the id it made or changed, and the aggregate's version after it."""

    id: str
    version: int | None = None
    task_id: str | None = None


@dataclass(frozen=True)
class CommandRoute:
    path: str
    command: type[cmd.Command]
    body: type[cmd.Body]
    tag: str
    summary: str
    optional_body: bool = False

    @property
    def creates(self) -> bool:
        return self.command.creates is not None

    @property
    def path_ids(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)


ROUTES = (
    CommandRoute("/v1/plans", cmd.ApprovePlan, cmd.PlanBody, "plans", "The State Council approves a plan"),
    CommandRoute(
        "/v1/plans/{plan_id}/amend", cmd.AmendPlan, cmd.AmendmentBody, "plans", "The State Council amends a plan"
    ),
    CommandRoute("/v1/tasks", cmd.CreateTask, cmd.TaskBody, "tasks", "Create a task and assign its departments"),
    CommandRoute(
        "/v1/tasks/{task_id}/milestones",
        cmd.ScheduleMilestone,
        cmd.MilestoneBody,
        "milestones",
        "Schedule a milestone of the task, with its due date",
    ),
    CommandRoute(
        "/v1/tasks/{task_id}/milestones/{milestone_id}/met",
        cmd.MarkMilestoneMet,
        cmd.EvidenceBody,
        "milestones",
        "Mark a milestone met",
        optional_body=True,
    ),
    CommandRoute(
        "/v1/tasks/{task_id}/progress",
        cmd.ReportProgress,
        cmd.ProgressBody,
        "tasks",
        "Report the task's progress (lead or supporting department)",
    ),
    CommandRoute(
        "/v1/tasks/{task_id}/complete",
        cmd.CompleteTask,
        cmd.CompletionBody,
        "tasks",
        "The lead department completes the task",
        optional_body=True,
    ),
    CommandRoute("/v1/tasks/{task_id}/cancel", cmd.CancelTask, cmd.CancellationBody, "tasks", "Cancel the task"),
    CommandRoute(
        "/v1/tasks/{task_id}/reassign",
        cmd.ReassignTask,
        cmd.ReassignmentBody,
        "tasks",
        "Give the task another lead or other supporting departments",
    ),
    CommandRoute(
        "/v1/tasks/{task_id}/deadline",
        cmd.ChangeDeadline,
        cmd.DeadlineBody,
        "tasks",
        "Change the task's deadline, saying why",
    ),
    CommandRoute(
        "/v1/tasks/{task_id}/issues",
        cmd.ReportIssue,
        cmd.IssueBody,
        "issues",
        "Report a difficulty or problem met in carrying the task out",
    ),
    CommandRoute(
        "/v1/issues/{issue_id}/escalate",
        cmd.EscalateIssue,
        cmd.EscalationBody,
        "issues",
        "The supervisor (NDRC) reports a major issue on to the State Council",
        optional_body=True,
    ),
    CommandRoute(
        "/v1/issues/{issue_id}/resolve",
        cmd.ResolveIssue,
        cmd.ResolutionBody,
        "issues",
        "Resolve the issue",
        optional_body=True,
    ),
    CommandRoute(
        "/v1/tasks/{task_id}/approvals",
        cmd.RequestApproval,
        cmd.ApprovalBody,
        "approvals",
        "Submit an important policy or major construction project for approval",
    ),
    CommandRoute(
        "/v1/approvals/{approval_id}/decision",
        cmd.DecideApproval,
        cmd.DecisionBody,
        "approvals",
        "The State Council decides",
    ),
    CommandRoute(
        "/v1/plans/{plan_id}/evaluations",
        cmd.RecordPlanEvaluation,
        cmd.EvaluationBody,
        "evaluations",
        "The supervisor (NDRC) records an evaluation of the plan's implementation as a whole",
    ),
    CommandRoute(
        "/v1/issues/{issue_id}/support-requests",
        cmd.RequestSupport,
        cmd.SupportRequestBody,
        "support",
        "The lead department (or the NDRC) asks State Council departments for support on an issue",
    ),
    CommandRoute(
        "/v1/support-requests/{request_id}/acknowledge",
        cmd.AcknowledgeSupport,
        cmd.EmptyBody,
        "support",
        "An asked department acknowledges the request",
        optional_body=True,
    ),
    CommandRoute(
        "/v1/support-requests/{request_id}/answer",
        cmd.AnswerSupport,
        cmd.AnswerBody,
        "support",
        "An asked department answers with what it did",
    ),
    CommandRoute(
        "/v1/support-requests/{request_id}/decline",
        cmd.DeclineSupport,
        cmd.DeclineBody,
        "support",
        "An asked department declines, saying why",
    ),
    CommandRoute(
        "/v1/support-requests/{request_id}/close",
        cmd.CloseSupport,
        cmd.ClosingBody,
        "support",
        "The requester closes the request",
        optional_body=True,
    ),
    CommandRoute(
        "/v1/tasks/{task_id}/evaluations",
        cmd.RecordEvaluation,
        cmd.EvaluationBody,
        "evaluations",
        "The supervisor (NDRC) records an evaluation of the task's implementation",
    ),
)


async def write(
    route: CommandRoute, request: Request, actor: Any, service: Any, body: BaseModel | None, ids: dict[str, str]
) -> JSONResponse:
    fields = {**(body.model_dump() if body is not None else {}), **ids}
    if route.command.creates is not None:
        fields[route.command.creates] = new_id(route.command.creates.removesuffix("_id"))
    try:
        command = route.command.model_validate(fields)
    except ValidationError as error:
        errors = field_errors(error.errors())
        raise Problem(422, "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]), errors=errors) from error
    if_match, idempotency = _if_match(request), await _idempotency(request)
    correlation_id = request.headers.get("x-correlation-id")
    tasks = await runtime(request)
    act = await signed_act(
        request, tasks.trust, actor.department, required=actor.department in tasks.settings.signed_departments
    )
    try:
        answer = await service.execute(
            command, actor, if_match=if_match, idempotency=idempotency, correlation_id=correlation_id, act=act
        )
    except NotOwner:
        answer = await _forwarded(request, command, actor, if_match, idempotency, correlation_id, act)
    headers = {"ETag": f'"{answer.body["version"]}"'} if answer.body.get("version") else {}
    return JSONResponse(answer.body, status_code=answer.status, headers=headers)


async def _forwarded(
    request: Request,
    command: cmd.Command,
    actor: Actor,
    if_match: int | None,
    idempotency: IdempotencyKey | None,
    correlation_id: str | None,
    act: SignedAct | None,
) -> Answer:
    """Another instance decides the command's aggregate: it is sent there, and its answer read
    back from the log; a refusal there is the same problem it would have been here."""
    partitioned = (await runtime(request)).partitioned
    assert partitioned is not None, "only an instance that is one of several writers is not an owner"
    try:
        answer = await partitioned.forwarder.forward(
            command, actor, act, if_match=if_match, idempotency=idempotency, correlation_id=correlation_id
        )
    except ForwardTimedOut as error:
        raise Problem(503, str(error), headers={"Retry-After": "2"}) from error
    if answer.status >= 400:
        raise Problem(answer.status, answer.body["detail"], errors=answer.body["errors"] or None)
    return answer


def _if_match(request: Request) -> int | None:
    header = request.headers.get("if-match")
    if header is None:
        return None
    try:
        return parse_if_match(header)
    except ValueError as error:
        raise Problem(422, f"If-Match {error}", field="If-Match") from error


async def _idempotency(request: Request) -> IdempotencyKey | None:
    keyed = await idempotency_key(request)
    return None if keyed is None else IdempotencyKey(*keyed)


def _endpoint(route: CommandRoute) -> Any:
    async def endpoint(
        request: Request, actor: Authenticated, service: Service, body: Any = None, **ids: str
    ) -> JSONResponse:
        return await write(route, request, actor, service, body, ids)

    body_type: Any = route.body
    body_default: Any = inspect.Parameter.empty
    if route.optional_body:
        body_type, body_default = Annotated[route.body | None, Body()], None
    keyword = inspect.Parameter.KEYWORD_ONLY
    signature = inspect.Signature(
        [
            inspect.Parameter("request", keyword, annotation=Request),
            inspect.Parameter("actor", keyword, annotation=Authenticated),
            inspect.Parameter("service", keyword, annotation=Service),
            *(inspect.Parameter(name, keyword, annotation=AggregateIdPath) for name in route.path_ids),
            inspect.Parameter("body", keyword, annotation=body_type, default=body_default),
        ]
    )
    endpoint.__signature__ = signature  # type: ignore[attr-defined]  # FastAPI reads the parameters from it
    endpoint.__name__ = route.command.name
    return endpoint


WRITE_PROBLEMS = problem_responses(401, 403, 404, 409, 412, 413, 422, 503)
for _route in ROUTES:
    router.add_api_route(
        _route.path,
        _endpoint(_route),
        methods=["POST"],
        status_code=201 if _route.creates else 200,
        response_model=WriteAnswer,
        tags=[_route.tag],
        summary=_route.summary,
        responses=WRITE_PROBLEMS,
        description=(_route.command.__doc__ or "").strip() or None,
        name=_route.command.name,
        openapi_extra=fills(**{_route.command.creates: "$response.body#/id"}) if _route.command.creates else None,
    )
