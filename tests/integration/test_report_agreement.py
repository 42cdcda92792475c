"""The responsibility report and the NDRC's implementation report agree with each other and with
the log: a ledger kept here from the raw records (headers and JSON, no codec, no evolve) gives
the same numbers. On a broker of its own, so the log holds this scenario and nothing else."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from policytrack.processes import ServiceProcess
from shared.contract import catalog as c
from shared.contract.topics import EVENTS
from tests.conftest import (
    JILIN,
    MEE,
    NDRC,
    SC,
    Broker,
    ServiceFactory,
    caught_up,
    eventually,
    read_to_end,
    token,
)

MOFCOM = token("u-mofcom", "MOFCOM", "supporter")
GACC = token("u-gacc", "GACC", "supporter")
DEPARTMENTS = ("SC", "JILIN", "CHANGCHUN", "NDRC", "MOFCOM", "MOST", "MIIT", "MEE", "MOFA", "MOF", "GACC", "NAO")
NOT_ACTS = {c.ReportSubmitted.event_type, c.CommandRejected.event_type, c.CheckpointSigned.event_type}


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass
class Ledger:
    """The trail's numbers, kept by hand from the raw records up to a moment."""

    at: datetime
    acts: Counter[str] = field(default_factory=Counter)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    escalations: Counter[str] = field(default_factory=Counter)
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    evaluation_due: dict[str, datetime] = field(default_factory=dict)
    plan_evaluated: dict[str, datetime] = field(default_factory=dict)

    def record(self, headers: dict[str, str], data: dict[str, Any]) -> None:
        when, kind = moment(headers["time"]), headers["type"]
        if when > self.at:
            return
        if "actordept" in headers and kind not in NOT_ACTS:
            self.acts[headers["actordept"]] += 1
        short = c.short_type(kind)
        if short.startswith(("task.", "milestone.")):
            self._task(short, data, when)
        elif short.startswith("support_request."):
            self._support(short, data, when)
        elif short == "issue.escalated":
            self.escalations[data["task_id"]] += 1
        elif short == "plan.evaluation_due":
            self.evaluation_due[data["plan_id"]] = moment(data["due"])
        elif short == "evaluation.recorded" and data.get("plan_id"):
            self.plan_evaluated[data["plan_id"]] = when

    def _task(self, short: str, data: dict[str, Any], when: datetime) -> None:
        if short == "task.created":
            self.tasks[data["task_id"]] = {
                "field": data["field"],
                "due": moment(data["due"]),
                "lead": None,
                "supporting": [],
                "open": True,
                "percent": 0,
                "health": "on_track",
                "milestones": {},
            }
            return
        task = self.tasks[data["task_id"]]
        if short in ("task.assigned", "task.reassigned"):
            task["lead"], task["supporting"] = data["lead_department"], data["supporting_departments"]
        elif short == "task.progress_reported":
            task["percent"] = data["percent"]
        elif short == "task.completed":
            task["open"], task["percent"] = False, 100
        elif short == "task.cancelled":
            task["open"] = False
        elif short == "task.deadline_changed":
            task["due"] = moment(data["due"])
        elif short == "task.health_changed":
            task["health"] = data["health"]
        elif short == "milestone.scheduled":
            task["milestones"][data["milestone_id"]] = moment(data["due"])
        elif short == "milestone.met":
            task["milestones"].pop(data["milestone_id"], None)

    def _support(self, short: str, data: dict[str, Any], when: datetime) -> None:
        if short == "support_request.requested":
            self.requests[data["request_id"]] = {
                "by": moment(data["by"]),
                "open": True,
                "answers": dict.fromkeys(data["departments"], ("pending", None)),
            }
        elif short == "support_request.closed":
            self.requests[data["request_id"]]["open"] = False
        elif short in ("support_request.answered", "support_request.declined"):
            self.requests[data["request_id"]]["answers"][data["department"]] = (short.split(".")[1], when)

    def late(self, task: dict[str, Any]) -> bool:
        return task["open"] and (task["due"] < self.at or any(due < self.at for due in task["milestones"].values()))

    def at_risk(self, task: dict[str, Any]) -> bool:
        return task["open"] and not self.late(task) and task["health"] == "at_risk"

    def departments(self) -> dict[str, dict[str, int]]:
        table = {d: defaultdict(int, acts=self.acts.get(d, 0)) for d in DEPARTMENTS}
        for task_id, task in self.tasks.items():
            if task["lead"]:
                table[task["lead"]]["lead"] += 1
            for department in task["supporting"]:
                table[department]["supporting"] += 1
            if lead := task["lead"]:
                table[lead]["done"] += not task["open"]
                table[lead]["late"] += self.late(task)
                table[lead]["at_risk"] += self.at_risk(task)
                table[lead]["escalated"] += self.escalations[task_id]
        for request in self.requests.values():
            for department, (state, answered_at) in request["answers"].items():
                row = table[department]
                row["support_received"] += 1
                if state == "declined":
                    row["support_declined"] += 1
                elif state == "answered":
                    row["support_answered_in_time" if answered_at <= request["by"] else "support_late"] += 1
                elif request["open"] and request["by"] < self.at:
                    row["support_unanswered"] += 1
        overdue = [p for p, due in self.evaluation_due.items() if self.plan_evaluated.get(p, due - timedelta(1)) < due]
        table["NDRC"]["evaluations_overdue"] = len(overdue)
        return {d: {k: v for k, v in row.items() if v} for d, row in table.items()}

    def fields(self) -> dict[str, dict[str, Any]]:
        by_field: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for task in self.tasks.values():
            by_field[task["field"]].append(task)
        return {
            name: {
                "tasks": len(tasks),
                "average_percent": round(sum(t["percent"] for t in tasks) / len(tasks), 1),
                "done": sum(not t["open"] for t in tasks),
                "late": sum(self.late(t) for t in tasks),
                "at_risk": sum(self.at_risk(t) for t in tasks),
            }
            for name, tasks in by_field.items()
        }


def ledger_of(records: list[Any], at: datetime) -> Ledger:
    ledger = Ledger(at)
    for record in records:
        headers = {k.removeprefix("ce_"): v.decode() for k, v in record.headers if k.startswith("ce_")}
        if "type" in headers and record.value:
            ledger.record(headers, orjson.loads(record.value))
    return ledger


def nonzero(table: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {d: {k: v for k, v in row.items() if v} for d, row in table.items()}


async def scenario(client: httpx.AsyncClient) -> dict[str, str]:
    """A bit of everything the reports count: late, at risk and done tasks, an escalation,
    support answered in time, answered late, declined and ignored, an evaluation falling due."""
    now = datetime.now(UTC)
    plan = (await client.post("/v1/plans", headers=SC, json={"title": "Plan", "evaluation_interval_months": 1})).json()
    made = {}
    for name, supporting, due, field_ in (
        ("late", ["MIIT", "MOFCOM"], now - timedelta(days=1), "trade"),
        ("risky", ["GACC"], now + timedelta(days=300), "trade"),
        ("done", ["MEE"], now + timedelta(days=300), "environment"),
    ):
        body = {
            "plan_id": plan["id"],
            "title": name,
            "field": field_,
            "lead_department": "JILIN",
            "supporting_departments": supporting,
            "due": due.isoformat(),
        }
        made[name] = (await client.post("/v1/tasks", headers=JILIN, json=body)).json()["id"]
    await client.post(f"/v1/tasks/{made['risky']}/progress", headers=JILIN, json={"percent": 35})
    gate = (now + timedelta(days=3)).isoformat()
    await client.post(f"/v1/tasks/{made['risky']}/milestones", headers=JILIN, json={"title": "Gate", "due": gate})
    await client.post(f"/v1/tasks/{made['done']}/complete", headers=JILIN, json={"note": "done"})
    issue = {"title": "Bonded zone stalled", "severity": "major"}
    issue_id = (await client.post(f"/v1/tasks/{made['late']}/issues", headers=JILIN, json=issue)).json()["id"]
    await client.post(f"/v1/issues/{issue_id}/escalate", headers=NDRC, json={"reason": "major"})
    # Support is asked for by a moment still to come: the first request's moment passes before
    # it is answered, so that its answer is late.
    soon, later = datetime.now(UTC) + timedelta(seconds=2), (now + timedelta(days=14)).isoformat()
    asked = await client.post(
        f"/v1/issues/{issue_id}/support-requests",
        headers=JILIN,
        json={"departments": ["MOFCOM", "GACC", "MEE"], "need": "help", "by": soon.isoformat()},
    )
    assert asked.status_code == 201, asked.text
    again = await client.post(
        f"/v1/issues/{issue_id}/support-requests",
        headers=NDRC,
        json={"departments": ["MOFCOM"], "need": "more help", "by": later},
    )
    await asyncio.sleep((soon - datetime.now(UTC)).total_seconds() + 0.1)  # time passing, not readiness
    for request, who, verb, body in (
        (asked, MOFCOM, "answer", {"answer": "late but done"}),
        (asked, GACC, "decline", {"reason": "not ours"}),
        (again, MOFCOM, "answer", {"answer": "in time"}),
    ):
        response = await client.post(f"/v1/support-requests/{request.json()['id']}/{verb}", headers=who, json=body)
        assert response.status_code == 200, response.text
    await client.post(f"/v1/tasks/{made['late']}/evaluations", headers=NDRC, json={"rating": "poor"})
    assert (await client.get(f"/v1/support-requests/{asked.json()['id']}", headers=MEE)).status_code == 200
    return {**made, "plan": plan["id"]}


def pdf_text(document: bytes) -> str:
    """The document's text as poppler reads it: what a reader's PDF viewer shows."""
    return subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=document, capture_output=True, check=True
    ).stdout.decode()


async def test_both_reports_agree_with_each_other_and_with_a_ledger_kept_from_the_raw_log(
    spare_broker: Broker, service_factory: ServiceFactory
) -> None:
    on_spare = {
        **spare_broker.service_env(),
        "POLICYTRACK_TASKS_WATCH_INTERVAL_SECONDS": "0.5",
        "POLICYTRACK_TASKS_EVALUATION_MONTH_SECONDS": "2",
    }
    tasks = service_factory("tasks", **on_spare).start()
    audit: ServiceProcess = service_factory("audit", **on_spare).start()
    started = datetime.now(UTC)
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        ids = await scenario(client)

    async def settled() -> Ledger | None:
        ledger = ledger_of(await read_to_end(spare_broker.settings, EVENTS), datetime.now(UTC))
        healths = {name: ledger.tasks[ids[name]]["health"] for name in ("late", "risky", "done")}
        due = ids["plan"] in ledger.evaluation_due
        return ledger if due and healths == {"late": "late", "risky": "at_risk", "done": "done"} else None

    await eventually(settled, timeout=60, what="assessments recorded on the log")
    await caught_up(audit)
    at = datetime.now(UTC)
    await caught_up(audit)
    async with httpx.AsyncClient(base_url=audit.url, timeout=60) as client:
        duties = (await client.get("/v1/audit/responsibility", headers=NDRC, params={"as_of": at.isoformat()})).json()
        period = {"from": started.isoformat(), "to": at.isoformat()}
        answered = await client.get("/v1/audit/reports/implementation", headers=NDRC, params=period)
        report = answered.json()
        documents = [
            await client.get("/v1/audit/reports/implementation", headers=NDRC, params={**period, "format": "pdf"})
            for _ in range(2)
        ]
    ledger = ledger_of(await read_to_end(spare_broker.settings, EVENTS), at)

    # The formal document (PDF, in Chinese) carries the JSON's hash, its numbers and the same text each time.
    assert all(d.status_code == 200 and d.headers["content-type"] == "application/pdf" for d in documents)
    texts = [pdf_text(d.content) for d in documents]
    digest = answered.headers["digest"].removeprefix("sha-256=")
    assert texts[0] == texts[1] and "关于总体方案实施情况的报告" in texts[0] and "国务院：" in texts[0]
    flat = re.sub(r"\s+", "", texts[0])
    assert digest in flat
    assert "吉林省人民政府" in flat and re.search(r"—\s*1\s*—", texts[0]), "departments by name; numbered pages"

    assert nonzero(duties["departments"]) == nonzero(report["departments"]) == ledger.departments()
    assert report["fields"] == ledger.fields()
    assert [t["task_id"] for t in report["tasks_late"]] == [ids["late"]]
    assert [t["task_id"] for t in report["tasks_at_risk"]] == [ids["risky"]]
    assert report["evaluations_overdue"] == [ids["plan"]]
    expected = {"lead": 3, "done": 1, "late": 1, "at_risk": 1, "escalated": 1}
    assert {k: v for k, v in ledger.departments()["JILIN"].items() if k in expected} == expected
    assert ledger.departments()["MOFCOM"]["support_answered_in_time"] == 1
    assert ledger.departments()["MOFCOM"]["support_late"] == ledger.departments()["MEE"]["support_unanswered"] == 1
    assert "late" not in ledger.departments()["MOFCOM"], (
        "a supporting department does not answer for the lead's lateness"
    )
    assert ledger.departments()["GACC"]["support_declined"] == 1
