"""Deadlines in the user's own calendar: a secret-address iCalendar feed, read with the
``icalendar`` library as a calendar client would, against the real services and broker."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from icalendar import Calendar

from shared.i18n import BEIJING
from tests.conftest import JILIN, MIIT, NDRC, SC, ServiceFactory, eventually


async def feed_holding(client: httpx.AsyncClient, url: str, *uids: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        answer = await client.get(url)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/calendar"), answer.text
        events = {str(e["uid"]): e for e in Calendar.from_ical(answer.content).walk("VEVENT")}
        return events if all(uid in events for uid in uids) else None

    return await eventually(probe, timeout=30, what=f"{uids} in the feed")


async def test_a_feed_holds_the_departments_deadlines_only_and_a_revoked_address_is_404(
    service_factory: ServiceFactory,
) -> None:
    tasks = service_factory("tasks").start()
    notifications = service_factory("notifications").start()
    async with httpx.AsyncClient(base_url=tasks.url) as writer:
        plan = (
            await writer.post("/v1/plans", headers=SC, json={"title": "Overall Plan", "evaluation_interval_months": 6})
        ).json()["id"]
        task = {"plan_id": plan, "field": "trade", "due": "2030-01-01T00:00:00Z"}
        ours = (
            await writer.post(
                "/v1/tasks", headers=JILIN, json={**task, "title": "Bonded logistics", "lead_department": "JILIN"}
            )
        ).json()["id"]
        theirs = (
            await writer.post(
                "/v1/tasks", headers=JILIN, json={**task, "title": "Trade fair", "lead_department": "MOFCOM"}
            )
        ).json()["id"]
        station = (
            await writer.post(
                f"/v1/tasks/{ours}/milestones",
                headers=JILIN,
                json={"title": "Customs station", "due": "2029-06-30T16:00:00Z"},
            )
        ).json()["id"]

    async with httpx.AsyncClient(base_url=notifications.url) as client:
        made = await client.post("/v1/calendar-feeds", headers=JILIN, json={})
        assert made.status_code == 201, made.text
        feed, url = made.json()["id"], made.json()["url"]
        events = await feed_holding(client, url, f"task-{ours}@policytrack", f"milestone-{station}@policytrack")
        assert not [uid for uid in events if theirs in uid], "another department's task is not in the feed"
        due = events[f"task-{ours}@policytrack"]
        assert due["dtstart"].params["TZID"] == "Asia/Shanghai"
        assert due.decoded("dtstart") == datetime(2030, 1, 1, 8, 0, tzinfo=BEIJING)
        assert str(due["summary"]) == "任务截止：Bonded logistics"
        assert Calendar.from_ical((await client.get(url)).content).walk("VTIMEZONE"), "the zone is defined"

        # A changed deadline replaces the entry: the same UID, the new moment.
        async with httpx.AsyncClient(base_url=tasks.url) as writer:
            changed = await writer.post(
                f"/v1/tasks/{ours}/deadline",
                headers=SC,
                json={"due": "2030-03-01T00:00:00Z", "reason": "Customs review"},
            )
            assert changed.status_code == 200, changed.text

        async def moved() -> bool:
            answer = await client.get(url)
            found = [
                e for e in Calendar.from_ical(answer.content).walk("VEVENT") if e["uid"] == f"task-{ours}@policytrack"
            ]
            return len(found) == 1 and found[0].decoded("dtstart") == datetime(2030, 3, 1, 8, 0, tzinfo=BEIJING)

        await eventually(moved, timeout=30, what="the changed deadline in the feed")

        # The supervisor, who reads everything, may have all of it: every task and when the plan's
        # evaluation falls due; a department that sees only its own tasks may not.
        ndrc = (
            await client.post("/v1/calendar-feeds", headers=NDRC, json={"owner": "department", "scope": "all"})
        ).json()
        assert (await client.post("/v1/calendar-feeds", headers=MIIT, json={"scope": "all"})).status_code == 403
        await feed_holding(client, ndrc["url"], f"task-{theirs}@policytrack", f"evaluation-{plan}@policytrack")

        # Another department cannot touch the feed; its maker rotates it, then revokes it.
        assert (await client.post(f"/v1/calendar-feeds/{feed}/rotation", headers=MIIT)).status_code == 404
        assert (await client.delete(f"/v1/calendar-feeds/{feed}", headers=MIIT)).status_code == 404
        rotated = await client.post(f"/v1/calendar-feeds/{feed}/rotation", headers=JILIN)
        assert rotated.status_code == 200 and rotated.json()["url"] != url
        assert (await client.get(url)).status_code == 404, "the old address is dead"
        assert (await client.get(rotated.json()["url"])).status_code == 200
        assert (await client.delete(f"/v1/calendar-feeds/{feed}", headers=JILIN)).status_code == 204
        gone = await client.get(rotated.json()["url"])
        assert gone.status_code == 404 and gone.headers["content-type"].startswith("application/problem+json")
        listed = (await client.get("/v1/calendar-feeds", headers=JILIN)).json()["items"]
        assert feed not in [item["id"] for item in listed]
