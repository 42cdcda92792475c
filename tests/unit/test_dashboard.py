"""The dashboard's pure parts with plain data: the overview's summaries, a task's history in
words, the responsibility heat map, the milestone time axis, and sessions."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from services.web.adapters.sessions import Sessions
from services.web.application.reading import events_of
from services.web.domain.history import describe, history
from services.web.domain.overview import overview
from services.web.domain.responsibility import heat, table
from services.web.entrypoints.charts import milestone_timeline
from services.web.entrypoints.session import local_path
from shared.auth import Actor
from shared.bounds import Bound
from shared.contract import catalog as c
from shared.contract.catalog import EventData
from shared.contract.codec import to_structured
from shared.contract.codes import ApprovalKind, Department, Role, Severity
from shared.contract.envelope import new_event
from shared.domain.refusals import Busy
from shared.domain.state import Milestone, Task, TaskStatus
from shared.http.problems import REFUSAL_STATUS
from shared.i18n import using

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def a_task(task_id: str = "task-1", **fields: object) -> Task:
    defaults: dict[str, object] = {
        "version": 1,
        "created_at": NOW - 100 * DAY,
        "updated_at": NOW - DAY,
        "task_id": task_id,
        "plan_id": "plan-1",
        "title": f"Task {task_id}",
        "field": "industry",
        "due": NOW + 100 * DAY,
        "created_by": "u-sc",
        "lead_department": "JILIN",
    }
    return Task.model_validate({**defaults, **fields})


def entry(event_type: str, time: str = "2026-11-01T00:00:00+00:00", **data: object) -> dict[str, Any]:
    """An entry as the history reads it: only what the history shows."""
    return {
        "seq": 1,
        "event": {
            "type": f"org.policytrack.{event_type}.v1",
            "time": time,
            "actor": "u-1",
            "actordept": "JILIN",
            "data": data,
        },
    }


def trail_entries(*changes: EventData) -> list[dict[str, Any]]:
    """Trail entries as the audit API gives them, of ``changes`` in log order (each aggregate's
    events numbered from version 1)."""
    versions: Counter[str] = Counter()
    entries = []
    for seq, data in enumerate(changes, 1):
        versions[data.subject] += 1
        event = new_event(data, actor="u-1", actordept=Department.JILIN, aggregateversion=versions[data.subject])
        entries.append(
            {"seq": seq, "event": {**orjson.loads(to_structured(event)), "datacontenttype": "application/json"}}
        )
    return entries


def test_an_escalated_issue_shows_as_escalated_and_a_resolved_one_not_at_all() -> None:
    entries = trail_entries(
        c.IssueReported(issue_id="issue-a", task_id="task-1", title="Customs", severity=Severity.MAJOR),
        c.IssueReported(issue_id="issue-b", task_id="task-1", title="Land", severity=Severity.LOW),
        c.IssueEscalated(issue_id="issue-a", task_id="task-1"),
        c.IssueResolved(issue_id="issue-b", task_id="task-1"),
    )
    summary = overview([a_task()], events_of(entries), NOW)
    assert [(i.issue_id, i.escalated) for i in summary.issues] == [("issue-a", True)]
    assert [i.title for i in summary.escalated] == ["Customs"]


def test_only_approvals_not_yet_decided_are_pending() -> None:
    entries = trail_entries(
        c.ApprovalRequested(approval_id="appr-a", task_id="task-1", kind=ApprovalKind.POLICY, title="A"),
        c.ApprovalRequested(approval_id="appr-b", task_id="task-1", kind=ApprovalKind.POLICY, title="B"),
        c.ApprovalGranted(approval_id="appr-a", task_id="task-1"),
        c.ApprovalRequested(approval_id="appr-c", task_id="task-1", kind=ApprovalKind.POLICY, title="C"),
        c.ApprovalRejected(approval_id="appr-c", task_id="task-1"),
    )
    assert [a.approval_id for a in overview([], events_of(entries), NOW).approvals] == ["appr-b"]


def test_the_overview_folds_with_the_shared_evolve_and_passes_over_what_it_cannot_fold() -> None:
    """An escalation whose report the reader was not given changes nothing; one delivered twice
    is folded once; an entry that is not an event is passed over."""
    entries = trail_entries(
        c.IssueEscalated(issue_id="issue-unseen", task_id="task-1"),
        c.IssueReported(issue_id="issue-a", task_id="task-1", title="Customs", severity=Severity.MAJOR),
    )
    entries.append({**entries[-1], "seq": 3})
    entries.append({"seq": 4, "event": None, "decode_error": "not a CloudEvent"})
    summary = overview([], events_of(entries), NOW)
    assert [(i.issue_id, i.escalated) for i in summary.issues] == [("issue-a", False)]


def test_late_milestones_are_the_open_ones_past_due_longest_overdue_first() -> None:
    task = a_task(
        milestones=[
            Milestone(milestone_id="m-met", title="met", due=NOW - 9 * DAY, met_at=NOW - 10 * DAY),
            Milestone(milestone_id="m-late", title="late", due=NOW - 2 * DAY),
            Milestone(milestone_id="m-later", title="later", due=NOW - 5 * DAY),
            Milestone(milestone_id="m-future", title="future", due=NOW + 5 * DAY),
        ]
    )
    cancelled = a_task(
        "task-2", status=TaskStatus.CANCELLED, milestones=[Milestone(milestone_id="m-x", title="x", due=NOW - DAY)]
    )
    late = overview([task, cancelled], [], NOW).late_milestones
    assert [m.title for m in late] == ["later", "late"]


def test_tasks_are_counted_by_health_with_cancelled_apart() -> None:
    tasks = [
        a_task("task-1", health="at_risk"),
        a_task("task-2"),
        a_task("task-3", status=TaskStatus.CANCELLED, health="at_risk"),
    ]
    counts = overview(tasks, [], NOW).by_health
    assert counts == {"on_track": 1, "at_risk": 1, "late": 0, "done": 0, "cancelled": 1}


def test_fields_show_the_mean_progress_of_their_tasks() -> None:
    tasks = [a_task("task-1", percent=20), a_task("task-2", percent=60), a_task("task-3", field="trade", percent=5)]
    fields = {str(f.field): f for f in overview(tasks, [], NOW).fields}
    assert (fields["industry"].tasks, fields["industry"].average_percent) == (2, 40.0)
    assert fields["trade"].average_percent == 5.0


def test_history_says_who_of_which_department_did_what_oldest_first() -> None:
    lines = history(
        [
            entry("task.created", title="Cluster", due="2027-01-01"),
            entry("task.progress_reported", time="2026-11-02T00:00:00+00:00", percent=40, note="site ready"),
            {"seq": 3, "event": None, "decode_error": "not JSON"},
        ]
    )
    assert [(line.department, line.actor) for line in lines] == [("JILIN", "u-1"), ("JILIN", "u-1")]
    with using("en"):
        assert describe(lines[1]) == "reported progress of 40%: site ready"
        assert describe(lines[0]) == "created the task “Cluster”, due January 1, 2027"
    with using("zh_CN"):
        assert describe(lines[1]) == "报告进度 40%：site ready"
        assert describe(lines[0]) == "创建任务“Cluster”，截止日期 2027年1月1日"


def test_a_milestone_met_is_named() -> None:
    """Issue 29: "marked a milestone met" did not say which milestone."""
    lines = history(
        [
            entry("milestone.scheduled", milestone_id="m-1", title="Customs single window", due="2027-01-01"),
            entry("milestone.met", milestone_id="m-1"),
        ]
    )
    with using("en"):
        assert describe(lines[1]) == "marked the milestone “Customs single window” met"


def test_heat_is_relative_to_the_largest_value_of_the_column() -> None:
    assert [heat(value, 10) for value in (0, 1, 4, 10)] == [0, 1, 2, 5]
    assert heat(3, 0) == 0


def test_the_table_sorts_on_any_column_and_leaves_out_departments_with_nothing() -> None:
    departments = {
        "JILIN": {"lead": 5, "late": 2},
        "MOFCOM": {"lead": 1, "late": 3},
        "MOST": {"lead": 0, "late": 0},
    }
    by_late = table(departments, sort="late", descending=True)
    assert [row.department for row in by_late.rows] == ["MOFCOM", "JILIN"]
    assert by_late.rows[0].cells[1].level == 5 and by_late.rows[0].cells[1].worse_when_more
    assert table(departments, sort="no such column").sort == "department"


def test_the_time_axis_marks_late_milestones_and_escapes_titles() -> None:
    task = a_task(
        milestones=[
            Milestone(milestone_id="m-1", title="<script>x</script>", due=NOW - 9 * DAY, met_at=NOW - 10 * DAY),
            Milestone(milestone_id="m-2", title="met late", due=NOW - 9 * DAY, met_at=NOW - 2 * DAY),
            Milestone(milestone_id="m-3", title="open past due", due=NOW - DAY),
            Milestone(milestone_id="m-4", title="open", due=NOW + DAY),
        ]
    )
    svg = str(milestone_timeline(task, NOW))
    assert svg.count('data-state="late"') == 2
    assert svg.count('data-state="met"') == 1 and svg.count('data-state="open"') == 1
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_a_session_ends_with_its_token_and_the_user_s_own_oldest_goes_first() -> None:
    clock = [NOW]
    sessions = Sessions(timedelta(hours=8), Bound(per_user=2, in_all=100), clock=lambda: clock[0])
    actor = Actor(user="u", department=Department.NDRC, roles=frozenset({Role.SUPERVISOR}), expires_at=NOW + DAY / 24)
    first = sessions.begin("token-1", actor)
    assert first.expires_at == NOW + DAY / 24
    second, third = sessions.begin("token-2", actor), sessions.begin("token-3", actor)
    assert sessions.find(first.id) is None and sessions.find(second.id) == second
    clock[0] = NOW + DAY
    assert sessions.find(third.id) is None
    assert first.csrf != second.csrf


def test_one_user_signing_in_again_and_again_signs_nobody_else_out() -> None:
    """Issue 28, item 3: with one global cap, oldest out first, one user signing in 10,000
    times signed out everyone else."""
    sessions = Sessions(timedelta(hours=8), Bound(per_user=20, in_all=50), clock=lambda: NOW)
    others = [
        sessions.begin("t", Actor(user=f"u-{n}", department=Department.JILIN, roles=frozenset())) for n in range(10)
    ]
    busy = Actor(user="u-busy", department=Department.JILIN, roles=frozenset())
    for _ in range(10_000):
        sessions.begin("t", busy)
    assert all(sessions.find(s.id) == s for s in others), "everyone else still signed in"
    assert len(sessions) == 10 + 20


def test_when_everyone_s_sessions_fill_the_bound_a_new_sign_in_waits() -> None:
    clock = [NOW]
    sessions = Sessions(timedelta(hours=1), Bound(per_user=5, in_all=3), clock=lambda: clock[0])
    held = [sessions.begin("t", Actor(user=f"u-{n}", department=Department.JILIN, roles=frozenset())) for n in range(3)]
    with pytest.raises(Busy) as refused:
        sessions.begin("t", Actor(user="u-late", department=Department.JILIN, roles=frozenset()))
    assert REFUSAL_STATUS[refused.value.kind] == 429 and refused.value.retry_after_seconds == 5
    assert all(sessions.find(s.id) == s for s in held), "nobody was signed out to make room"
    clock[0] = NOW + timedelta(hours=2)  # the three expire: room again
    assert sessions.begin("t", Actor(user="u-late", department=Department.JILIN, roles=frozenset())) is not None


def test_after_sign_in_the_browser_goes_only_to_a_path_of_this_site() -> None:
    assert local_path("/tasks/task-1?as_of=x") == "/tasks/task-1?as_of=x"
    for elsewhere in ("https://evil.example/", "//evil.example/", "/\\evil.example", "", None):
        assert local_path(elsewhere) == "/"
