"""Two years of work on the seed's plan, played in a minute on the development clock: the State
Council approves, the tasks are assigned, progress is reported quarter by quarter, milestones
are met on time and late, an issue is raised and escalated, support is answered in time, late
and never, an approval is decided, the NDRC evaluates and reports. Every service reads the same
simulated clock (``POLICYTRACK_CLOCK_FILE``), so each act carries the day it happened on and the
alerts fall when they would have; at the end the clock file is removed and time is real again.

Who should look worst, and why (the responsibility table says the same):
- CHANGCHUN leads two tasks that are past their due date (the opening-up platform and the
  business environment), the most of any lead department; JILIN one (cross-border trade, whose
  bonded-zone issue went up to the State Council).
- GACC never answered the support request on that issue; MOFCOM answered it, but late; MOST
  answered its request in time.
- The NDRC's latest plan evaluation fell due and is not yet recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any

import httpx
import orjson

from policytrack.demo import PLAN_TITLE, TASKS, Demo
from shared.clock import set_simulated_time
from shared.domain.calendar import BEIJING

YEARS = 2
SETTLE = 0.15
"""How long the services are given to see a new moment (they read the clock file every 50 ms)."""

# (task, key, title, due day, met on day or None)
MILESTONES = [
    ("planning", "master-plan", "Master plan of the Zone published", 200, 190),
    ("industry", "land", "Industrial land allocated for the cluster", 150, 140),
    ("industry", "first-plant", "First joint-venture plant breaks ground", 400, 430),
    ("science", "charter", "Innovation centre charter signed with ROK partners", 120, 110),
    ("trade", "single-window", "Single-window customs clearance live", 300, None),
    ("environment", "stations", "Cross-border air-quality monitoring stations online", 400, 395),
    ("humanities", "exchange", "First student exchange cohort arrives", 250, 245),
    ("opening", "bonded-zone", "Bonded logistics zone approved", 420, None),
    ("business", "one-stop", "One-stop government service centre opens", 330, 350),
    ("institutions", "mechanism", "Joint committee with the ROK meets for the first time", 750, None),
]
# (task, lead person, due day; completed on day or None; a new due day on a later day, or None)
PLAN_OF_TASKS = {
    "planning": ("jilin", 240, 230, None),
    "industry": ("jilin", 540, None, (500, 900)),
    "science": ("changchun", 420, 410, None),
    "trade": ("jilin", 365, None, None),
    "environment": ("jilin", 480, 470, None),
    "humanities": ("changchun", 300, 290, None),
    "opening": ("changchun", 450, None, None),
    "business": ("changchun", 360, None, None),
    "institutions": ("jilin", 800, None, None),
}
LEADS = {"jilin": "JILIN", "changchun": "CHANGCHUN"}

Step = Callable[[], object]
"""One act of the history (what the request answers is not used)."""


@dataclass
class History:
    """The story on a timeline starting ``YEARS`` ago, told through ``player`` (its Idempotency-Keys
    make a second telling on the same data change nothing)."""

    player: Demo
    clock_file: Path
    say: Callable[[str], None] = print
    start: datetime = field(
        default_factory=lambda: datetime.combine(
            (datetime.now(BEIJING) - timedelta(days=365 * YEARS)).date(), day_time(9, 0), tzinfo=BEIJING
        )
    )
    steps: list[tuple[int, Step]] = field(default_factory=list)

    def day(self, n: float) -> datetime:
        return self.start + timedelta(days=n)

    def at(self, n: int, step: Step) -> None:
        self.steps.append((n, step))

    def play(self) -> dict[str, str]:
        """Plays the story day by day, then gives the services the real time back."""
        self._tell()
        try:
            with httpx.Client(base_url=self.player.tasks_url, timeout=30) as self.player._client:
                for n, step in sorted(self.steps, key=lambda s: s[0]):
                    set_simulated_time(self.clock_file, self.day(n))
                    time.sleep(SETTLE)
                    step()
        finally:
            self.clock_file.unlink(missing_ok=True)
        self.say(f"two years of work played, from {self.start:%Y-%m-%d} to today")
        return self.player.ids

    def _post(self, person: str, path: str, body: dict[str, Any], key: str) -> dict[str, Any]:
        return self.player.post(person, path, body, f"history:{key}")

    def _tell(self) -> None:
        self.at(0, self._approve)
        self.at(6, self._assign)
        self.at(8, self._schedule)
        for task, key, _, _due, met in MILESTONES:
            if met is not None:
                self.at(met, self._met(task, key))
        for quarter in range(1, 4 * YEARS):
            self.at(quarter * 90, self._quarterly(quarter))
        for task, (person, _, completed, moved) in PLAN_OF_TASKS.items():
            if completed is not None:
                self.at(completed, self._complete(task, person))
            if moved is not None:
                self.at(moved[0], self._move_deadline(task, moved[1]))
        self.at(95, self._support_in_time)
        self.at(200, self._issue)
        self.at(205, self._escalate)
        self.at(206, self._ask_customs_and_commerce)
        self.at(210, self._acknowledge)
        self.at(250, self._answer_late)
        self.at(300, self._ask_approval)
        self.at(320, self._grant_approval)
        for n in (190, 370, 550):
            self.at(n, self._evaluate_plan(n))
        self.at(240, self._evaluate("planning", "good", "Planning system in place on time."))
        self.at(400, self._evaluate("trade", "poor", "Cross-border trade waits on the bonded zone; press GACC."))

    # --- the acts -----------------------------------------------------------------------------

    def _approve(self) -> None:
        plan = self._post(
            "sc",
            "/v1/plans",
            {
                "title": PLAN_TITLE,
                "summary": "Approved in principle by the State Council; Jilin organizes implementation; "
                "the NDRC supervises and evaluates.",
                "evaluation_interval_months": 6,
            },
            "plan",
        )
        self.player.ids["plan"] = plan["id"]
        self.say(f"{self.day(0):%Y-%m-%d}: the State Council approved the Overall Plan")

    def _assign(self) -> None:
        for key, field_, title, _, supporting, by, _ in TASKS:
            person, due, _, _ = PLAN_OF_TASKS[key]
            task = self._post(
                by,
                "/v1/tasks",
                {
                    "plan_id": self.player.ids["plan"],
                    "title": title,
                    "field": field_,
                    "lead_department": LEADS[person],
                    "supporting_departments": supporting,
                    "due": self.day(due).isoformat(),
                },
                f"task:{key}",
            )
            self.player.ids[key] = task["id"]
        self.say(f"{len(TASKS)} tasks assigned to Jilin and Changchun, State Council departments supporting")

    def _schedule(self) -> None:
        for task, key, title, due, _ in MILESTONES:
            person = PLAN_OF_TASKS[task][0]
            milestone = self._post(
                person,
                f"/v1/tasks/{self.player.ids[task]}/milestones",
                {"title": title, "due": self.day(due).isoformat()},
                f"milestone:{task}:{key}",
            )
            self.player.ids[f"{task}:{key}"] = milestone["id"]

    def _met(self, task: str, key: str) -> Step:
        def met() -> None:
            ids = self.player.ids
            path = f"/v1/tasks/{ids[task]}/milestones/{ids[f'{task}:{key}']}/met"
            self._post(PLAN_OF_TASKS[task][0], path, {}, f"met:{task}:{key}")

        return met

    def _quarterly(self, quarter: int) -> Step:
        def report() -> None:
            for task, (person, due, completed, moved) in PLAN_OF_TASKS.items():
                n = quarter * 90
                if completed is not None and completed <= n:
                    continue
                end = moved[1] if moved else due
                # Late tasks stall below where they should be; the others move towards their due date.
                percent = min(95, round(100 * n / end * (0.6 if task in ("trade", "opening", "business") else 1)))
                self._post(
                    person,
                    f"/v1/tasks/{self.player.ids[task]}/progress",
                    {"percent": max(percent, 5), "note": f"quarterly report {quarter}"},
                    f"progress:{task}:{quarter}",
                )

        return report

    def _complete(self, task: str, person: str) -> Step:
        return lambda: self._post(
            person, f"/v1/tasks/{self.player.ids[task]}/complete", {"note": "done as planned"}, f"complete:{task}"
        )

    def _move_deadline(self, task: str, due: int) -> Step:
        return lambda: self._post(
            "sc",
            f"/v1/tasks/{self.player.ids[task]}/deadline",
            {"due": self.day(due).isoformat(), "reason": "Phase II of the industrial park added to the task."},
            f"deadline:{task}",
        )

    def _support_in_time(self) -> None:
        issue = self._post(
            "changchun",
            f"/v1/tasks/{self.player.ids['science']}/issues",
            {"title": "Laboratory equipment held at import", "severity": "medium"},
            "issue:lab-equipment",
        )
        request = self._post(
            "changchun",
            f"/v1/issues/{issue['id']}/support-requests",
            {
                "departments": ["MOST"],
                "need": "Guidance on tariff exemption for research equipment.",
                "by": self.day(125).isoformat(),
            },
            "support:lab-equipment",
        )
        set_simulated_time(self.clock_file, self.day(110))
        time.sleep(SETTLE)
        self._post("most", f"/v1/support-requests/{request['id']}/acknowledge", {}, "support:most:ack")
        self._post(
            "most",
            f"/v1/support-requests/{request['id']}/answer",
            {"answer": "Exemption list updated; equipment cleared."},
            "support:most:answer",
        )
        self._post("changchun", f"/v1/support-requests/{request['id']}/close", {}, "support:most:close")
        self._post("changchun", f"/v1/issues/{issue['id']}/resolve", {"resolution": "Cleared."}, "resolve:lab")

    def _issue(self) -> None:
        issue = self._post(
            "jilin",
            f"/v1/tasks/{self.player.ids['trade']}/issues",
            {
                "title": "Bonded logistics zone approval stalled",
                "severity": "major",
                "detail": "Cross-border trade cannot open without a decision on the zone's customs status.",
            },
            "issue:bonded-zone",
        )
        self.player.ids["issue"] = issue["id"]
        self.say(f"{self.day(200):%Y-%m-%d}: Jilin reported that the bonded zone is stalled")

    def _escalate(self) -> None:
        self._post(
            "ndrc",
            f"/v1/issues/{self.player.ids['issue']}/escalate",
            {"reason": "A major issue: the reply has it reported to the State Council."},
            "escalate",
        )

    def _ask_customs_and_commerce(self) -> None:
        request = self._post(
            "jilin",
            f"/v1/issues/{self.player.ids['issue']}/support-requests",
            {
                "departments": ["MOFCOM", "GACC"],
                "by": self.day(236).isoformat(),
                "need": "Guidance on the bonded zone's customs status and on trade facilitation with the ROK.",
            },
            "support:bonded-zone",
        )
        self.player.ids["support"] = request["id"]

    def _acknowledge(self) -> None:
        self._post("mofcom", f"/v1/support-requests/{self.player.ids['support']}/acknowledge", {}, "ack")

    def _answer_late(self) -> None:
        self._post(
            "mofcom",
            f"/v1/support-requests/{self.player.ids['support']}/answer",
            {"answer": "MOFCOM issued guidance and set up a joint working group with GACC and Jilin."},
            "support:mofcom:answer",
        )

    def _ask_approval(self) -> None:
        approval = self._post(
            "jilin",
            f"/v1/tasks/{self.player.ids['industry']}/approvals",
            {
                "kind": "major_project",
                "title": "Sino-Korean International Industrial Park, phase II",
                "detail": "Major construction project submitted by procedure.",
            },
            "approval:park-ii",
        )
        self.player.ids["approval"] = approval["id"]

    def _grant_approval(self) -> None:
        self._post(
            "sc",
            f"/v1/approvals/{self.player.ids['approval']}/decision",
            {"granted": True, "reason": "Consistent with the Plan; proceed."},
            "decision:park-ii",
        )

    def _evaluate_plan(self, n: int) -> Step:
        return lambda: self._post(
            "ndrc",
            f"/v1/plans/{self.player.ids['plan']}/evaluations",
            {"rating": "fair" if n > 300 else "good", "findings": f"Evaluation of the half year to day {n}."},
            f"plan-evaluation:{n}",
        )

    def _evaluate(self, task: str, rating: str, findings: str) -> Step:
        return lambda: self._post(
            "ndrc",
            f"/v1/tasks/{self.player.ids[task]}/evaluations",
            {"rating": rating, "findings": findings},
            f"evaluation:{task}",
        )


def played(marker: Path) -> dict[str, str] | None:
    """The ids of the story already played on this data, if it was."""
    try:
        ids: dict[str, str] = orjson.loads(marker.read_bytes())
    except FileNotFoundError:
        return None
    return ids


def remember(marker: Path, ids: dict[str, str]) -> None:
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_bytes(orjson.dumps(ids))


def tell(tasks_url: str, data_dir: Path, clock_file: Path, say: Callable[[str], None] = print) -> Demo:
    """The story on fresh data, or the ids of the one told before (the clock is never wound back
    on data that has lived past it)."""
    marker = data_dir / "run" / "scenario.json"
    player = Demo(tasks_url, say=say, namespace="history")
    if (ids := played(marker)) is not None:
        player.ids.update(ids)
        say("the two years of work were played on this data before")
        return player
    History(player, clock_file, say).play()
    remember(marker, player.ids)
    return player
