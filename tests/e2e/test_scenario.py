"""The seed's scenario through all three services over the real broker, as each user sees it:
the departmental systems their answers, a subscriber its alerts, the auditor a trail that
verifies and replays."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

from policytrack.demo import MILESTONES, TASKS, Demo, token_for
from tests.conftest import Receiver, ServiceFactory, eventually

NAO = {"Authorization": f"Bearer {token_for('nao')}"}
NDRC = {"Authorization": f"Bearer {token_for('ndrc')}"}


async def test_the_demonstration_zone_scenario_end_to_end(
    service_factory: ServiceFactory, receiver: Receiver, tmp_path: Path
) -> None:
    # Assessed twice a second, with six-second "months": the scenario's at-risk task and its
    # evaluation falling due show within the test.
    watching = {"POLICYTRACK_TASKS_WATCH_INTERVAL_SECONDS": "0.5", "POLICYTRACK_TASKS_EVALUATION_MONTH_SECONDS": "1"}
    tasks = service_factory("tasks", **watching).start()
    notifications = service_factory("notifications").start()
    audit = service_factory("audit", POLICYTRACK_AUDIT_CHECKPOINT_INTERVAL_SECONDS="1").start()

    async with httpx.AsyncClient(base_url=notifications.url, timeout=30) as client:
        subscription = await client.post("/v1/subscriptions", headers=NDRC, json={"webhook_url": receiver.url})
        assert subscription.status_code == 201, subscription.text
        secret = subscription.json()["secret"]

    # The departmental systems: every step answered, and a second run changes nothing.
    namespace = f"e2e-{uuid.uuid4().hex[:8]}"
    player = Demo(tasks.url, say=lambda _: None, namespace=namespace)
    ids = await asyncio.to_thread(player.setup)
    again = await asyncio.to_thread(Demo(tasks.url, say=lambda _: None, namespace=namespace).setup)
    assert again == ids
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        states = {key: (await client.get(f"/v1/tasks/{ids[key]}", headers=NAO)).json() for key, *_ in TASKS}
        assert {state["field"] for state in states.values()} >= {
            "industry",
            "science_technology",
            "trade",
            "humanities",
            "environment",
        }
        assert all(state["lead_department"] and state["supporting_departments"] for state in states.values())
        overdue = (await client.get("/v1/tasks", headers=NAO, params={"overdue": "true", "limit": 500})).json()
        late_tasks = {ids[task] for task, _, _, days, met in MILESTONES if days < 0 and not met}
        assert late_tasks <= {t["task_id"] for t in overdue["items"]}
        issue = (await client.get(f"/v1/issues/{ids['issue']}", headers=NAO)).json()
        assert (issue["status"], issue["escalated_to"], issue["reported_by_department"]) == ("escalated", "SC", "JILIN")
        approval = (await client.get(f"/v1/approvals/{ids['approval']}", headers=NAO)).json()
        assert (approval["kind"], approval["status"]) == ("major_project", "granted")

    # The subscriber: overdue alerts for the late milestones, and the escalation to the State Council.
    late_milestones = {ids[f"{task}:{key}"] for task, key, _, days, met in MILESTONES if days < 0 and not met}

    async def alerted() -> list[dict[str, Any]] | None:
        events = [event for _, event in receiver.alerts(secret)]
        overdue_for = {e["data"].get("milestone_id") for e in events if e["type"].endswith(".overdue.v1")}
        escalated = [e for e in events if e["type"].endswith(".escalated.v1") and e["data"]["escalated_to"] == "SC"]
        return events if late_milestones <= overdue_for and escalated else None

    alerts = await eventually(alerted, timeout=60, what="overdue and escalation alerts at the subscriber")
    assert len({a["id"] for a in alerts}) == len(alerts), "no alert delivered twice"

    # The division of labour: support asked and answered (or not), risk before lateness, an
    # evaluation falling due, each alerted to the NDRC.
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        support = (await client.get(f"/v1/support-requests/{ids['support']}", headers=NAO)).json()
        assert {a["department"]: a["state"] for a in support["answers"]} == {"MOFCOM": "answered", "GACC": "asked"}

    async def divided() -> list[dict[str, Any]] | None:
        events = [event for _, event in receiver.alerts(secret)]
        at_risk = {e["data"]["task_id"] for e in events if e["type"].endswith(".at_risk.v1")}
        # The log is shared with the other tests' plans, whose evaluations fall due too.
        evaluation = [
            e for e in events if e["type"].endswith(".evaluation_due.v1") and e["data"]["plan_id"] == ids["plan"]
        ]
        return events if ids["humanities"] in at_risk and evaluation else None

    await eventually(divided, timeout=60, what="at-risk and evaluation-due alerts at the NDRC")
    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        at_risk = (await client.get("/v1/tasks", headers=NAO, params={"health": "at_risk", "limit": 500})).json()
        assert ids["humanities"] in {t["task_id"] for t in at_risk["items"]}

    # The auditor: the trail holds the scenario, verifies, and replays to what the tasks service says.
    async with httpx.AsyncClient(base_url=audit.url, timeout=120) as client:

        async def caught_up() -> bool:
            ready = (await client.get("/readyz")).json()
            return bool(ready.get("lag") == 0 and ready.get("entries", 0) > 0)

        await eventually(caught_up, timeout=60, what="audit caught up")
        for key, _state in states.items():
            replayed = (await client.get(f"/v1/audit/tasks/{ids[key]}/state", headers=NAO)).json()
            current = (await httpx.AsyncClient(base_url=tasks.url).get(f"/v1/tasks/{ids[key]}", headers=NAO)).json()
            assert replayed == current, key
        escalations = (
            await client.get(
                "/v1/audit/events", headers=NAO, params={"type": "issue.escalated", "actor": "u-ndrc-regional-dept"}
            )
        ).json()
        assert ids["issue"] in {e["event"]["subject"] for e in escalations["items"]}

    # The NDRC's report to the State Council: submitted, and on the trail with its SHA-256.
    submitted = await asyncio.to_thread(player.submit_report, audit.url)
    async with httpx.AsyncClient(base_url=audit.url, timeout=120) as client:

        async def reported() -> list[dict[str, Any]] | None:
            found = await client.get("/v1/audit/events", headers=NAO, params={"type": "report.submitted"})
            return [e for e in found.json()["items"] if e["event"]["subject"] == submitted["id"]] or None

        on_trail = await eventually(reported, timeout=60, what="report.submitted on the trail")
        assert on_trail[0]["event"]["data"]["sha256"] == submitted["sha256"]

    cli = [sys.executable, "-m", "policytrack.cli"]
    verified = subprocess.run(
        [*cli, "verify", "--audit-url", audit.url, "--json"], capture_output=True, text=True, timeout=300
    )
    assert verified.returncode == 0, verified.stderr
    assert orjson.loads(verified.stdout)["ok"] is True
    assert verified.stderr == "", "--json prints the result and nothing else"
    # Not on a terminal: plain progress lines; on one (as Rich is told), a bar with rate and time left.
    plain = subprocess.run([*cli, "verify", "--audit-url", audit.url], capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0 and "verifying the trail done: " in plain.stderr, plain.stderr
    on_terminal = subprocess.run(
        [*cli, "export", "--audit-url", audit.url, "--output", str(tmp_path / "again.ndjson")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TTY_COMPATIBLE": "1", "COLUMNS": "160"},
    )
    assert on_terminal.returncode == 0, on_terminal.stderr
    assert "━" in on_terminal.stderr and "/s" in on_terminal.stderr and "exporting" in on_terminal.stderr
    output = tmp_path / "trail.ndjson"
    exported = subprocess.run(
        [*cli, "export", "--audit-url", audit.url, "--output", str(output), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert exported.returncode == 0, exported.stderr
    lines = [orjson.loads(line) for line in output.read_bytes().splitlines()]
    assert len(lines) == orjson.loads(exported.stdout)["records"] >= orjson.loads(verified.stdout)["entries"]
    exported_subjects = {line["event"]["subject"] for line in lines if line["event"]}
    assert {ids[key] for key, *_ in TASKS} | {ids["plan"], ids["issue"], ids["approval"]} <= exported_subjects
