"""The scenario of ``make run``: two years of work played on the development clock through all
the services. Acts carry the days they happened on, a milestone met before its due date raises
no overdue alert, the trail's as-of replay shows the story unfold, and the responsibility table
ranks the departments the way the story (and the README) says (issue 29)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from policytrack.demo import Demo, token_for
from policytrack.history import MILESTONES, History
from tests.conftest import Broker, ServiceFactory, caught_up, eventually

NAO = {"Authorization": f"Bearer {token_for('nao')}"}
NDRC = {"Authorization": f"Bearer {token_for('ndrc')}"}


async def test_two_years_of_work_read_like_two_years_of_work(
    spare_broker: Broker, service_factory: ServiceFactory, tmp_path: Path
) -> None:
    # A broker of the story's own: the responsibility table counts every task on the log. It
    # is asked for first so that it is stopped last: the services stop while it still answers
    # (stopped after it, the notifications scheduler waited 15 s on an alert it could not append).
    clock = {**spare_broker.service_env(), "POLICYTRACK_CLOCK_FILE": str(tmp_path / "clock")}
    tasks = service_factory("tasks", POLICYTRACK_TASKS_WATCH_INTERVAL_SECONDS="0.5", **clock).start()
    service_factory("notifications", **clock).start()
    audit = service_factory("audit", **clock).start()
    story = History(Demo(tasks.url, say=lambda _: None, namespace="history-test"), tmp_path / "clock", lambda _: None)
    ids = await asyncio.to_thread(story.play)
    assert not (tmp_path / "clock").exists(), "the real time is given back"

    async with httpx.AsyncClient(base_url=tasks.url, timeout=30) as client:
        plan = (await client.get(f"/v1/plans/{ids['plan']}", headers=NAO)).json()
        trade = (await client.get(f"/v1/tasks/{ids['trade']}", headers=NAO)).json()
    approved = datetime.fromisoformat(plan["created_at"].replace("Z", "+00:00"))
    assert abs(approved - story.start) < timedelta(minutes=1), "the plan was approved two years ago"
    milestones = {m["milestone_id"]: m for m in trade["milestones"]}
    assert milestones[ids["trade:single-window"]]["met_at"] is None, "the trade milestone is still open, late"

    await caught_up(audit, timeout=120)
    async with httpx.AsyncClient(base_url=audit.url, timeout=120) as client:
        # As of the end of the first year the planning task was done and trade was still on course.
        year_one = story.day(365).isoformat()
        planning = (
            await client.get(f"/v1/audit/tasks/{ids['planning']}/state", headers=NAO, params={"as_of": year_one})
        ).json()
        assert planning["status"] == "completed"
        first_quarter = story.day(100).isoformat()
        early = (
            await client.get(f"/v1/audit/tasks/{ids['planning']}/state", headers=NAO, params={"as_of": first_quarter})
        ).json()
        assert early["status"] == "open" and 0 < early["percent"] < 100

        duties = (await client.get("/v1/audit/responsibility", headers=NDRC)).json()["departments"]
    late = {d: row["late"] for d, row in duties.items() if row["late"]}
    assert late == {"CHANGCHUN": 2, "JILIN": 1}, late
    assert duties["GACC"]["support_unanswered"] == 1 and duties["GACC"]["late"] == 0
    assert duties["MOFCOM"]["support_late"] == 1 and duties["MOFCOM"]["late"] == 0
    assert duties["MOST"]["support_answered_in_time"] == 1

    # No overdue alert for a milestone met before its due date; one for each still open past it.
    met_on_time = {ids[f"{t}:{k}"] for t, k, _, due, met in MILESTONES if met is not None and met <= due}
    open_late = {ids[f"{t}:{k}"] for t, k, _, due, met in MILESTONES if met is None and due < 730}

    async def overdue_alerts() -> set[str] | None:
        async with httpx.AsyncClient(base_url=audit.url, timeout=60) as client:
            items = (
                await client.get("/v1/audit/events", headers=NAO, params={"type": "alert.overdue", "limit": 1000})
            ).json()["items"]
        alerted = {item["event"]["data"].get("milestone_id") for item in items if item["event"]}
        return alerted if open_late <= alerted else None

    alerted = await eventually(overdue_alerts, timeout=90, what="an overdue alert for each milestone left late")
    assert not alerted & met_on_time, "a milestone met on time was alerted as overdue"
