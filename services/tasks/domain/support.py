"""Item 4 of the reply: the relevant State Council departments "help solve the difficulties and
problems encountered in the implementation", each in its own field. The rules of a support
request: who may ask whom, and that only an asked department answers, and only for itself."""

from __future__ import annotations

from typing import Protocol

from services.tasks.domain import commands as cmd
from shared.contract import catalog as c
from shared.contract.codes import Department, Role
from shared.domain.access import Actor, can_write
from shared.domain.refusals import Conflict, Forbidden, Invalid, NotFound
from shared.domain.state import AnswerState, DepartmentAnswer, Issue, IssueStatus, SupportRequest, Task

HELPING_DEPARTMENTS = frozenset(
    {
        Department.MOFCOM,
        Department.MOST,
        Department.MIIT,
        Department.MEE,
        Department.MOFA,
        Department.MOF,
        Department.GACC,
    }
)
"""The State Council departments a request may be addressed to."""


class SupportWorld(Protocol):
    def task(self, task_id: str) -> Task | None: ...
    def issue(self, issue_id: str) -> Issue | None: ...
    def support_request(self, request_id: str) -> SupportRequest | None: ...


def request_support(command: cmd.RequestSupport, actor: Actor, world: SupportWorld) -> list[c.EventData]:
    issue = world.issue(command.issue_id)
    task = world.task(issue.task_id) if issue is not None else None
    if issue is None or task is None:
        raise NotFound(f"no issue {command.issue_id}", "issue_id")
    supervisor = actor.department == Department.NDRC and actor.has(Role.SUPERVISOR)
    lead = actor.department == task.lead_department and actor.has(Role.IMPLEMENTER, Role.SUPPORTER)
    if not (supervisor or lead):
        raise Forbidden(f"only the lead department of task {task.task_id} or the supervisor (NDRC) asks for support")
    if issue.status is IssueStatus.RESOLVED or not task.is_open:
        raise Conflict(f"issue {issue.issue_id} is resolved or its task is closed")
    if not set(command.departments) <= HELPING_DEPARTMENTS or len(set(command.departments)) != len(command.departments):
        names = ", ".join(sorted(HELPING_DEPARTMENTS))
        raise Invalid(f"support is asked of State Council departments, each once: {names}", "departments")
    return [
        c.SupportRequested(
            request_id=command.request_id,
            issue_id=issue.issue_id,
            task_id=task.task_id,
            departments=command.departments,
            need=command.need,
            by=command.by,
        )
    ]


def _open_request(request_id: str, world: SupportWorld) -> SupportRequest:
    request = world.support_request(request_id)
    if request is None:
        raise NotFound(f"no support request {request_id}", "request_id")
    if not request.is_open:
        raise Conflict(f"support request {request_id} is closed")
    return request


def _own_answer(request: SupportRequest, actor: Actor) -> DepartmentAnswer:
    """The actor's department's part of the request: nobody answers for another department."""
    answer = request.answer_of(actor.department)
    if answer is None or not can_write(actor):
        raise Forbidden(f"{actor.department} was not asked by support request {request.request_id}")
    return answer


def acknowledge_support(command: cmd.AcknowledgeSupport, actor: Actor, world: SupportWorld) -> list[c.EventData]:
    request = _open_request(command.request_id, world)
    answer = _own_answer(request, actor)
    if answer.state is not AnswerState.ASKED:
        raise Conflict(f"{answer.department} has already {answer.state} support request {request.request_id}")
    return [
        c.SupportAcknowledged(
            request_id=request.request_id,
            issue_id=request.issue_id,
            task_id=request.task_id,
            department=answer.department,
        )
    ]


def answer_support(command: cmd.AnswerSupport, actor: Actor, world: SupportWorld) -> list[c.EventData]:
    request = _open_request(command.request_id, world)
    answer = _still_to_answer(request, actor)
    return [
        c.SupportAnswered(
            request_id=request.request_id,
            issue_id=request.issue_id,
            task_id=request.task_id,
            department=answer.department,
            answer=command.answer,
            evidence=command.evidence,
        )
    ]


def decline_support(command: cmd.DeclineSupport, actor: Actor, world: SupportWorld) -> list[c.EventData]:
    request = _open_request(command.request_id, world)
    answer = _still_to_answer(request, actor)
    return [
        c.SupportDeclined(
            request_id=request.request_id,
            issue_id=request.issue_id,
            task_id=request.task_id,
            department=answer.department,
            reason=command.reason,
        )
    ]


def _still_to_answer(request: SupportRequest, actor: Actor) -> DepartmentAnswer:
    answer = _own_answer(request, actor)
    if answer.done:
        raise Conflict(f"{answer.department} has already {answer.state} support request {request.request_id}")
    return answer


def close_support(command: cmd.CloseSupport, actor: Actor, world: SupportWorld) -> list[c.EventData]:
    request = _open_request(command.request_id, world)
    if actor.department != request.requested_by_department or not can_write(actor):
        raise Forbidden(
            f"only the requester ({request.requested_by_department}) closes support request {request.request_id}"
        )
    return [
        c.SupportRequestClosed(
            request_id=request.request_id, issue_id=request.issue_id, task_id=request.task_id, note=command.note
        )
    ]
