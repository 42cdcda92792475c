"""The NDRC's report over plain data: the document a person reads carries the JSON's numbers,
and what departments wrote cannot break its tables or inject markup into it."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from services.audit.application import reports
from services.audit.domain.implementation import Replay, implementation_report
from services.tasks.domain import commands as cmd
from shared.contract.codes import ApprovalKind, CooperationField, Department, Rating, Severity
from tests.unit.test_tasks_rules import JILIN, NDRC, SC, Scenario, actor

NOW = datetime.now(UTC)
HOSTILE = "Zone | bonded\n# Heading <script>alert(1)</script> [link](http://x) &amp; **bold**"


def replay_of(world: Scenario) -> Replay:
    acts = Counter[str]()
    for event in world.events:
        acts[event.actordept or ""] += 1
    return Replay(projection=world.projection, acts=acts)


def hostile_world() -> Scenario:
    world = Scenario()
    world.run(cmd.ApprovePlan(plan_id="p", title=HOSTILE, evaluation_interval_months=6), SC)
    for task_id, due in (("t1", NOW - timedelta(days=1)), ("t2", NOW + timedelta(days=90))):
        world.run(
            cmd.CreateTask(
                task_id=task_id,
                plan_id="p",
                title=HOSTILE,
                field=CooperationField.TRADE,
                lead_department=Department.JILIN,
                due=due,
            ),
            JILIN,
        )
    world.run(cmd.ReportIssue(issue_id="i", task_id="t1", title=HOSTILE, severity=Severity.MAJOR), JILIN)
    world.run(cmd.RecordEvaluation(evaluation_id="e", task_id="t2", rating=Rating.FAIR, findings=HOSTILE), NDRC)
    return world


def table(document: str, heading: str) -> list[list[str]]:
    """The rows of the first table after ``heading``, split into cells on unescaped bars."""
    section = document.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][2:]
    return [[cell.strip() for cell in _cells(row)] for row in rows]


def _cells(row: str) -> list[str]:
    cells, current, escaped = [], "", False
    for char in row.strip()[1:-1]:
        if char == "|" and not escaped:
            cells.append(current)
            current = ""
        else:
            current += char
        escaped = char == "\\" and not escaped
    return [*cells, current]


def test_the_document_has_the_json_numbers_for_every_department_and_field() -> None:
    report = implementation_report(replay_of(hostile_world()), NOW - timedelta(days=30), NOW)
    document = reports.markdown(report)
    departments = {row[0]: [int(n) for n in row[1:]] for row in table(document, "## Each department's record")}
    columns = (
        *("lead", "supporting", "acts", "done", "late", "at_risk", "escalated", "support_received"),
        *("support_answered_in_time", "support_late", "support_declined", "support_unanswered"),
        "evaluations_overdue",
    )
    assert departments == {name: [row[c] for c in columns] for name, row in report["departments"].items()}
    assert departments["JILIN"][:5] == [2, 0, 5, 0, 1], "two tasks created and assigned, one issue"
    fields = table(document, "## Progress by field of cooperation")
    assert fields == [["trade", "2", "0.0%", "0", "1", "0"]]


def test_what_departments_wrote_stays_inside_its_cell_and_is_inert() -> None:
    report = implementation_report(replay_of(hostile_world()), NOW - timedelta(days=30), NOW)
    document = reports.markdown(report)
    for heading, width in (("## Plans", 4), ("## Tasks late", 6)):
        assert all(len(row) == width for row in table(document, heading)), heading
    assert "<script>" not in document and "\n# Heading" not in document and "](http" not in document
    assert "&amp;amp;" in document, "an ampersand someone wrote is shown as they wrote it"
    issue_lines = [line for line in document.splitlines() if "reported by JILIN" in line]
    assert len(issue_lines) == 1 and issue_lines[0].startswith("- **Zone \\| bonded \\# Heading")


def test_who_decided_cannot_inject_markup_or_a_heading() -> None:
    """Issue 28: ``decided_by`` (a token's subject) went into the Markdown unescaped."""
    world = hostile_world()
    sneaky = actor("SC", "approver", user="<img src=x onerror=alert(1)>\n# Approved by everyone")
    world.run(cmd.RequestApproval(approval_id="a", task_id="t2", kind=ApprovalKind.POLICY, title="Rules"), JILIN)
    world.run(cmd.DecideApproval(approval_id="a", granted=True), sneaky)
    replay = replay_of(world)
    replay.in_period.extend(world.events)
    document = reports.markdown(implementation_report(replay, NOW - timedelta(days=30), NOW))
    assert "<img" not in document and "&lt;img" in document
    assert "\n# Approved" not in document, "no heading smuggled in"
