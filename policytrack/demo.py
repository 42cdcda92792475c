"""The seed's scenario: the State Council's reply on the China-South Korea (Changchun)
International Cooperation Demonstration Zone, played through the tasks service.

Every step carries a fixed Idempotency-Key, so running the demo again on the same data
gets the first answers back and appends nothing new.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from shared.auth import mint_dev_token

PLAN_TITLE = "Overall Plan for the China-South Korea (Changchun) International Cooperation Demonstration Zone"
PEOPLE = {
    "sc": ("u-sc-general-office", "SC", ["approver"]),
    "jilin": ("u-jilin-development-office", "JILIN", ["implementer"]),
    "changchun": ("u-changchun-zone-committee", "CHANGCHUN", ["implementer"]),
    "ndrc": ("u-ndrc-regional-dept", "NDRC", ["supervisor"]),
    "mofcom": ("u-mofcom-asia-dept", "MOFCOM", ["supporter"]),
    "most": ("u-most-cooperation-dept", "MOST", ["supporter"]),
    "miit": ("u-miit-planning-dept", "MIIT", ["supporter"]),
    "mee": ("u-mee-cooperation-dept", "MEE", ["supporter"]),
    "gacc": ("u-gacc-port-dept", "GACC", ["supporter"]),
    "mofa": ("u-mofa-asian-affairs", "MOFA", ["supporter"]),
    "mof": ("u-mof-economic-construction", "MOF", ["supporter"]),
    "nao": ("u-nao-auditor", "NAO", ["auditor"]),
}
# (key, field, title, lead, supporting, by, days until due)
TASKS = [
    (
        "industry",
        "industry",
        "Modern industrial system: Sino-Korean new-energy vehicle and hydrogen cluster",
        "jilin",
        ["MIIT", "MOFCOM"],
        "jilin",
        540,
    ),
    (
        "science",
        "science_technology",
        "Joint innovation centre and technology transfer platform with the ROK",
        "changchun",
        ["MOST"],
        "jilin",
        420,
    ),
    (
        "trade",
        "trade",
        "Cross-border e-commerce and trade facilitation with the ROK",
        "jilin",
        ["MOFCOM", "GACC"],
        "jilin",
        365,
    ),
    (
        "humanities",
        "humanities",
        "People-to-people exchange: education, culture and tourism",
        "changchun",
        ["MOFA"],
        "jilin",
        300,
    ),
    (
        "environment",
        "environment",
        "Joint ecological protection and green development programme",
        "jilin",
        ["MEE"],
        "jilin",
        480,
    ),
    (
        "institutions",
        "institutional_innovation",
        "New mechanisms for Sino-foreign cooperation",
        "jilin",
        ["MOFCOM", "MOF"],
        "sc",
        600,
    ),
    (
        "opening",
        "opening_up",
        "Opening-up platform: bonded logistics and port cooperation",
        "changchun",
        ["GACC", "MOFCOM"],
        "jilin",
        450,
    ),
    (
        "business",
        "business_environment",
        "A law-based, internationalized and convenient business environment",
        "changchun",
        ["MOF", "MOFCOM"],
        "jilin",
        360,
    ),
    (
        "planning",
        "institutional_innovation",
        "Prepare and improve the Demonstration Zone's planning system",
        "jilin",
        ["MOFCOM"],
        "jilin",
        240,
    ),
]
# (task, key, title, days from now (negative: already late), met)
MILESTONES = [
    ("industry", "land", "Industrial land allocated for the cluster", -40, True),
    ("industry", "first-plant", "First joint-venture plant breaks ground", -12, False),
    ("science", "charter", "Innovation centre charter signed with ROK partners", -20, True),
    ("trade", "single-window", "Single-window customs clearance live", 0.002, False),
    ("environment", "stations", "Cross-border air-quality monitoring stations online", 25, False),
    ("humanities", "exchange", "First student exchange cohort arrives", 5, False),
    ("opening", "bonded-zone", "Bonded logistics zone approved", -3, False),
    ("planning", "master-plan", "Master plan of the Zone published", -60, True),
]


def token_for(person: str) -> str:
    user, department, roles = PEOPLE[person]
    return mint_dev_token(user, department, roles)


@dataclass
class Demo:
    tasks_url: str
    say: Callable[[str], None] = print
    namespace: str = "demo"
    """Prefix of the Idempotency-Keys: the same namespace replays, a new one plays anew."""
    ids: dict[str, str] = field(default_factory=dict)
    _client: httpx.Client | None = None

    def post(self, person: str, path: str, body: dict[str, Any], key: str) -> dict[str, Any]:
        assert self._client is not None
        response = self._client.post(
            path,
            json=body,
            headers={"Authorization": f"Bearer {token_for(person)}", "Idempotency-Key": f"{self.namespace}:{key}"},
        )
        if response.status_code >= 400 and response.status_code != 409:
            raise RuntimeError(f"{path}: {response.status_code} {response.text}")
        answer: dict[str, Any] = response.json()
        return answer

    def setup(self) -> dict[str, str]:
        """The scenario; on existing data it changes nothing and returns the same ids."""
        with httpx.Client(base_url=self.tasks_url, timeout=30) as self._client:
            plan = self.post(
                "sc",
                "/v1/plans",
                {
                    "title": PLAN_TITLE,
                    "summary": "Approved in principle by the "
                    "State Council; Jilin organizes implementation; NDRC supervises.",
                    "evaluation_interval_months": 6,
                },
                "plan",
            )["id"]
            self.ids["plan"] = plan
            # Every date is counted from the plan's approval, so that playing the scenario again
            # sends the very same requests (same Idempotency-Key, same body) and gets the first answers.
            now = self._approved_at(plan)
            self.say(f"plan approved by the State Council: {plan}")
            for key, field_, title, lead, supporting, by, days in TASKS:
                task = self.post(
                    by,
                    "/v1/tasks",
                    {
                        "plan_id": plan,
                        "title": title,
                        "field": field_,
                        "lead_department": PEOPLE[lead][1],
                        "supporting_departments": supporting,
                        "due": (now + timedelta(days=days)).isoformat(),
                    },
                    f"task:{key}",
                )
                self.ids[key] = str(task["id"])
            self.say(f"{len(TASKS)} tasks assigned across {len({t[1] for t in TASKS})} fields of cooperation")
            for of_task, key, title, in_days, met in MILESTONES:
                lead = next(t[3] for t in TASKS if t[0] == of_task)
                milestone = self.post(
                    lead,
                    f"/v1/tasks/{self.ids[of_task]}/milestones",
                    {"title": title, "due": (now + timedelta(days=in_days)).isoformat()},
                    f"milestone:{of_task}:{key}",
                )
                self.ids[f"{of_task}:{key}"] = str(milestone["id"])
                if met:
                    self.post(
                        lead,
                        f"/v1/tasks/{self.ids[of_task]}/milestones/{milestone['id']}/met",
                        {},
                        f"met:{of_task}:{key}",
                    )
            self.say("milestones scheduled; three already late, one due in a few minutes")
            self._progress()
            self._issue_escalated()
            self._support_requested(now)
            self._approval_decided()
            self.post(
                "ndrc",
                f"/v1/tasks/{self.ids['planning']}/evaluations",
                {"rating": "good", "findings": "Planning system in place; keep the industrial cluster on schedule."},
                "evaluation:planning",
            )
            self.say("NDRC recorded its evaluation of the planning task")
        return self.ids

    def _approved_at(self, plan: str) -> datetime:
        assert self._client is not None
        state = self._client.get(f"/v1/plans/{plan}", headers={"Authorization": f"Bearer {token_for('nao')}"})
        state.raise_for_status()
        return datetime.fromisoformat(state.json()["created_at"].replace("Z", "+00:00"))

    def _progress(self) -> None:
        for task, person, percent, note in [
            ("industry", "jilin", 35, "Land allocated; plant design under review"),
            ("industry", "miit", 40, "Industrial policy support confirmed"),
            ("science", "changchun", 25, "Charter signed; centre staffing"),
            ("trade", "gacc", 60, "Customs data exchange tested"),
            ("planning", "jilin", 90, "Master plan published"),
        ]:
            self.post(
                person,
                f"/v1/tasks/{self.ids[task]}/progress",
                {"percent": percent, "note": note},
                f"progress:{task}:{person}:{percent}",
            )
        self.say("progress reported by lead and supporting departments")

    def _issue_escalated(self) -> None:
        issue = self.post(
            "jilin",
            f"/v1/tasks/{self.ids['trade']}/issues",
            {
                "title": "Bonded logistics zone approval stalled",
                "severity": "major",
                "detail": "Cross-border trade cannot open without a State Council decision on the zone's "
                "customs status.",
            },
            "issue:bonded-zone",
        )
        self.ids["issue"] = issue["id"]
        self.post(
            "ndrc",
            f"/v1/issues/{issue['id']}/escalate",
            {"reason": "A major issue: reported to the State Council as the reply requires."},
            "escalate:bonded-zone",
        )
        self.say("JILIN reported a major issue; NDRC escalated it to the State Council")

    def _support_requested(self, now: datetime) -> None:
        request = self.post(
            "jilin",
            f"/v1/issues/{self.ids['issue']}/support-requests",
            {
                "departments": ["MOFCOM", "GACC"],
                "by": (now + timedelta(days=14)).isoformat(),
                "need": "Guidance on the bonded zone's customs status and on trade facilitation with the ROK.",
            },
            "support:bonded-zone",
        )
        self.ids["support"] = request["id"]
        self.post("mofcom", f"/v1/support-requests/{request['id']}/acknowledge", {}, "support:mofcom:ack")
        self.post(
            "mofcom",
            f"/v1/support-requests/{request['id']}/answer",
            {"answer": "MOFCOM issued guidance and set up a joint working group with GACC and Jilin."},
            "support:mofcom:answer",
        )
        self.say("JILIN asked MOFCOM and GACC for support; MOFCOM answered, GACC has not acknowledged yet")

    def submit_report(self, audit_url: str, wait: float = 60) -> dict[str, Any]:
        """The NDRC submits its report on the demo's period (from the plan's approval to now),
        once the audit trail holds the scenario."""
        headers = {"Authorization": f"Bearer {token_for('ndrc')}"}
        deadline = time.monotonic() + wait
        with httpx.Client(base_url=audit_url, timeout=60) as client:
            while time.monotonic() < deadline:
                ready = client.get("/readyz")
                if ready.status_code == 200 and ready.json().get("lag") == 0:
                    break
                time.sleep(0.5)
            plan = httpx.get(f"{self.tasks_url}/v1/plans/{self.ids['plan']}", headers=headers, timeout=30)
            period = {"from": plan.json()["created_at"], "to": datetime.now(UTC).isoformat()}
            submitted = client.post("/v1/audit/reports/implementation/submit", headers=headers, json=period)
        if submitted.status_code != 201:
            raise RuntimeError(f"report: {submitted.status_code} {submitted.text}")
        self.say(
            f"NDRC submitted its report on the period to the State Council (sha256 {submitted.json()['sha256'][:12]}…)"
        )
        result: dict[str, Any] = submitted.json()
        return result

    def _approval_decided(self) -> None:
        approval = self.post(
            "jilin",
            f"/v1/tasks/{self.ids['industry']}/approvals",
            {
                "kind": "major_project",
                "title": "Sino-Korean International Industrial Park, phase II",
                "detail": "Major construction project submitted by procedure.",
            },
            "approval:park-ii",
        )
        self.ids["approval"] = approval["id"]
        self.post(
            "sc",
            f"/v1/approvals/{approval['id']}/decision",
            {"granted": True, "reason": "Consistent with the Plan; proceed."},
            "decision:park-ii",
        )
        self.say("JILIN requested approval of a major project; the State Council granted it")

    def keep_going(self, stop: Callable[[], bool], every: float = 5.0) -> None:
        """A little activity: a progress report every few seconds, from the task's departments."""
        rotation = itertools.cycle(
            [
                ("industry", "jilin"),
                ("trade", "mofcom"),
                ("environment", "mee"),
                ("humanities", "changchun"),
                ("business", "mof"),
            ]
        )
        with httpx.Client(base_url=self.tasks_url, timeout=30) as client:
            while not stop():
                task, person = next(rotation)
                try:
                    self._report(client, task, person)
                except httpx.HTTPError as error:  # the service may be restarting: try again later
                    self.say(f"could not report progress ({type(error).__name__}); trying again")
                deadline = time.monotonic() + every
                while time.monotonic() < deadline and not stop():
                    time.sleep(0.1)

    def _report(self, client: httpx.Client, task: str, person: str) -> None:
        current = client.get(f"/v1/tasks/{self.ids[task]}", headers={"Authorization": f"Bearer {token_for('nao')}"})
        percent = min(99, current.json().get("percent", 0) + 1)
        client.post(
            f"/v1/tasks/{self.ids[task]}/progress",
            headers={"Authorization": f"Bearer {token_for(person)}"},
            json={"percent": percent, "note": f"weekly report {datetime.now(UTC):%Y-%m-%d %H:%M:%S}"},
        )
