"""Every write route of the tasks service, for every department and role: allowed exactly when
the State Council's reply gives that party the duty, 403 otherwise. Reading everything (the
NDRC, the State Council, Jilin, the National Audit Office, auditors, admins) never means
writing anything."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from services.tasks.adapters.event_log import InMemoryEventLog
from services.tasks.entrypoints.writes import ROUTES, CommandRoute
from shared.contract.codes import Department, Role
from tests.conftest import JILIN, NDRC, SC, token
from tests.fakes import in_process_tasks, restore

DUE = "2027-06-30T00:00:00Z"
WORKING = {Role.IMPLEMENTER, Role.SUPPORTER}
TASK_DEPARTMENTS = {Department.JILIN, Department.MIIT}  # lead and supporting department of the seeded task
CREATORS = {Department.SC, Department.JILIN}
ASKED = {Department.MOFCOM, Department.GACC}  # the departments the seeded support request asks
WRITERS = {Role.IMPLEMENTER, Role.SUPPORTER, Role.SUPERVISOR, Role.APPROVER, Role.ADMIN}
Rule = Callable[[Department, Role], bool]


def works_on_the_task(d: Department, r: Role) -> bool:
    return d in TASK_DEPARTMENTS and r in WORKING


def supervisor(d: Department, r: Role) -> bool:
    return d == Department.NDRC and r == Role.SUPERVISOR


def approver(d: Department, r: Role) -> bool:
    return d == Department.SC and r == Role.APPROVER


def creator(d: Department, r: Role) -> bool:
    return d in CREATORS and r in {Role.IMPLEMENTER, Role.APPROVER}


POLICY: dict[str, Rule] = {
    "approve_plan": approver,
    "amend_plan": approver,
    "create_task": creator,
    "schedule_milestone": works_on_the_task,
    "mark_milestone_met": works_on_the_task,
    "report_progress": works_on_the_task,
    "complete_task": lambda d, r: d == Department.JILIN and r in WORKING,
    "cancel_task": creator,
    "reassign_task": creator,
    "change_deadline": creator,
    "report_issue": works_on_the_task,
    "escalate_issue": supervisor,
    "resolve_issue": lambda d, r: supervisor(d, r) or works_on_the_task(d, r),
    "request_approval": works_on_the_task,
    "decide_approval": approver,
    "record_evaluation": supervisor,
    "record_plan_evaluation": supervisor,
    "request_support": lambda d, r: supervisor(d, r) or (d == Department.JILIN and r in WORKING),
    "acknowledge_support": lambda d, r: d in ASKED and r in WRITERS,
    "answer_support": lambda d, r: d in ASKED and r in WRITERS,
    "decline_support": lambda d, r: d in ASKED and r in WRITERS,
    "close_support": lambda d, r: d == Department.JILIN and r in WRITERS,
}
BODIES: dict[str, dict[str, object]] = {
    "approve_plan": {"title": "Plan"},
    "amend_plan": {"summary": "Adds a trade facilitation chapter"},
    "create_task": {"title": "t", "field": "trade", "lead_department": "JILIN", "due": DUE},
    "schedule_milestone": {"title": "m", "due": DUE},
    "report_progress": {"percent": 10},
    "cancel_task": {"reason": "merged"},
    "reassign_task": {"lead_department": "CHANGCHUN", "supporting_departments": ["MIIT"]},
    "change_deadline": {"due": DUE, "reason": "land approval"},
    "report_issue": {"title": "i", "severity": "low"},
    "request_approval": {"kind": "policy", "title": "a"},
    "decide_approval": {"granted": True},
    "record_evaluation": {"rating": "good"},
    "record_plan_evaluation": {"rating": "fair"},
    "request_support": {"departments": ["MIIT"], "need": "industrial policy guidance", "by": DUE},
    "answer_support": {"answer": "guidance issued"},
    "decline_support": {"reason": "outside our remit"},
}


async def seeded(with_milestone: bool) -> tuple[InMemoryEventLog, dict[str, str]]:
    log = InMemoryEventLog()
    async with in_process_tasks(log) as tasks:
        post = tasks.client.post
        ids = {"plan_id": (await post("/v1/plans", headers=SC, json={"title": "Plan"})).json()["id"]}
        ids["task_id"] = (
            await post(
                "/v1/tasks",
                headers=JILIN,
                json={
                    "plan_id": ids["plan_id"],
                    "title": "t",
                    "field": "trade",
                    "lead_department": "JILIN",
                    "supporting_departments": ["MIIT"],
                    "due": DUE,
                },
            )
        ).json()["id"]
        if with_milestone:
            ids["milestone_id"] = (
                await post(f"/v1/tasks/{ids['task_id']}/milestones", headers=JILIN, json={"title": "m", "due": DUE})
            ).json()["id"]
        ids["issue_id"] = (
            await post(f"/v1/tasks/{ids['task_id']}/issues", headers=JILIN, json={"title": "i", "severity": "major"})
        ).json()["id"]
        ids["request_id"] = (
            await post(
                f"/v1/issues/{ids['issue_id']}/support-requests",
                headers=JILIN,
                json={"departments": ["MOFCOM", "GACC"], "need": "customs guidance", "by": DUE},
            )
        ).json()["id"]
        ids["approval_id"] = (
            await post(f"/v1/tasks/{ids['task_id']}/approvals", headers=JILIN, json={"kind": "policy", "title": "a"})
        ).json()["id"]
    return log, ids


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.command.name)
async def test_each_write_is_allowed_exactly_to_whom_the_reply_gives_it(route: CommandRoute) -> None:
    name = route.command.name
    log, ids = await seeded(with_milestone=name != "complete_task")
    body = {**BODIES.get(name, {}), **({"plan_id": ids["plan_id"]} if name == "create_task" else {})}
    path = route.path.format(**ids)
    outcomes: dict[tuple[str, str], int] = {}
    async with in_process_tasks(InMemoryEventLog()) as tasks:
        for department in Department:
            for role in Role:
                restore(tasks.runtime, log.events)
                response = await tasks.client.post(
                    path, headers=token(f"u-{department}-{role}", department, role), json=body
                )
                outcomes[(department, role)] = response.status_code
                if response.status_code == 403:
                    assert len(tasks.events) == len(log.events), "a refused write appended something"
    succeeded = 201 if route.creates else 200  # what the route documents in the OpenAPI document
    allowed = {case for case, status in outcomes.items() if status == succeeded}
    refused = {case for case, status in outcomes.items() if status == 403}
    expected = {(d, r) for d in Department for r in Role if POLICY[name](d, r)}
    assert allowed == expected, (
        f"{name}: allowed {sorted(allowed - expected)} wrongly, refused {sorted(expected - allowed)}"
    )
    assert refused == set(outcomes) - expected, {case: s for case, s in outcomes.items() if s not in (succeeded, 403)}
    assert not (allowed & {(Department.NAO, r) for r in Role}), "the audit office never writes"


async def test_the_supervisor_escalates_and_the_approver_decides() -> None:
    log, ids = await seeded(with_milestone=True)
    async with in_process_tasks(log) as tasks:
        assert (await tasks.client.post(f"/v1/issues/{ids['issue_id']}/escalate", headers=NDRC)).status_code == 200
        decision = await tasks.client.post(
            f"/v1/approvals/{ids['approval_id']}/decision",
            headers=SC,
            json={"granted": False, "reason": "review missing"},
        )
        assert decision.status_code == 200
