"""One realistic payload of every event type in the catalog, drawn from the seed's plan."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.contract import catalog as c
from shared.contract.codes import CooperationField, Department, Rating, Severity
from shared.contract.envelope import AnyEvent, CloudEvent, new_event

DUE = datetime(2027, 6, 30, 16, 0, tzinfo=UTC)

PAYLOADS: dict[type[c.EventData], dict[str, Any]] = {
    c.PlanApproved: {
        "plan_id": "plan-cs-changchun",
        "title": "Overall Plan for the China-South Korea (Changchun) Zone",
    },
    c.PlanAmended: {"plan_id": "plan-cs-changchun", "summary": "Adds a trade facilitation chapter"},
    c.TaskCreated: {
        "task_id": "t-1",
        "plan_id": "plan-cs-changchun",
        "title": "Hydrogen vehicle cluster",
        "field": "industry",
        "due": DUE,
    },
    c.TaskAssigned: {"task_id": "t-1", "lead_department": "JILIN", "supporting_departments": ["MIIT", "MOFCOM"]},
    c.TaskReassigned: {
        "task_id": "t-1",
        "lead_department": "CHANGCHUN",
        "supporting_departments": ["MIIT"],
        "reason": "municipal execution",
    },
    c.TaskDeadlineChanged: {"task_id": "t-1", "due": DUE + timedelta(days=90), "reason": "land approval pending"},
    c.TaskProgressReported: {"task_id": "t-1", "percent": 40, "note": "site prepared"},
    c.TaskCompleted: {"task_id": "t-1", "note": "cluster opened"},
    c.TaskCancelled: {"task_id": "t-1", "reason": "merged into t-2"},
    c.MilestoneScheduled: {"task_id": "t-1", "milestone_id": "m-1", "title": "Land allocated", "due": DUE},
    c.MilestoneMet: {"task_id": "t-1", "milestone_id": "m-1"},
    c.IssueReported: {
        "issue_id": "i-1",
        "task_id": "t-1",
        "title": "Customs clearance delays",
        "severity": "major",
        "detail": "bonded zone not yet approved",
    },
    c.IssueEscalated: {"issue_id": "i-1", "task_id": "t-1", "reason": "needs a State Council decision"},
    c.IssueResolved: {"issue_id": "i-1", "task_id": "t-1", "resolution": "GACC opened a channel"},
    c.ApprovalRequested: {
        "approval_id": "a-1",
        "task_id": "t-1",
        "kind": "major_project",
        "title": "Sino-Korean industrial park phase 2",
        "detail": "RMB 12bn",
    },
    c.ApprovalGranted: {"approval_id": "a-1", "task_id": "t-1", "reason": "in line with the plan"},
    c.ApprovalRejected: {"approval_id": "a-1", "task_id": "t-1", "reason": "environmental review missing"},
    c.EvaluationRecorded: {"evaluation_id": "e-1", "task_id": "t-1", "rating": "good", "findings": "on schedule"},
    c.DeadlineApproaching: {
        "alert_id": "al-1",
        "task_id": "t-1",
        "milestone_id": "m-1",
        "title": "Land allocated",
        "due": DUE,
        "departments": ["JILIN"],
        "lead_seconds": 7 * 86400,
    },
    c.DeadlineDue: {"alert_id": "al-2", "task_id": "t-1", "title": "Hydrogen vehicle cluster", "due": DUE},
    c.DeadlineOverdue: {"alert_id": "al-3", "task_id": "t-1", "title": "Hydrogen vehicle cluster", "due": DUE},
    c.AlertEscalated: {
        "alert_id": "al-4",
        "task_id": "t-1",
        "title": "Hydrogen vehicle cluster",
        "due": DUE,
        "escalated_to": "NDRC",
        "reason": "overdue for 7 days",
    },
    c.AlertDelivered: {
        "alert_id": "al-1",
        "task_id": "t-1",
        "subscription_id": "s-1",
        "attempts": 1,
        "status_code": 204,
    },
    c.AlertDeliveryFailed: {
        "alert_id": "al-1",
        "task_id": "t-1",
        "subscription_id": "s-1",
        "attempts": 12,
        "reason": "connection refused",
    },
    c.SubscriptionCreated: {
        "subscription_id": "s-1",
        "department": "JILIN",
        "event_types": ["alert.overdue"],
        "webhook_url": "https://jilin.example.org/hooks",
        "sealed_secret": "gAAAA-sealed",
    },
    c.MailSubscriptionCreated: {
        "subscription_id": "s-2",
        "department": "JILIN",
        "person": "u-jilin",
        "address": "w***@jl.gov.cn",
        "sealed_address": "gAAAA-sealed",
        "language": "zh-CN",
    },
    c.SubscriptionRemoved: {"subscription_id": "s-1"},
    c.CalendarFeedIssued: {
        "feed_id": "feed-1",
        "owner": "person",
        "department": "JILIN",
        "roles": ["implementer"],
        "secret_sha256": "ab" * 32,
    },
    c.CalendarFeedRotated: {"feed_id": "feed-1", "secret_sha256": "cd" * 32},
    c.CalendarFeedRevoked: {"feed_id": "feed-1"},
    c.PlanEvaluationDue: {"plan_id": "plan-cs-changchun", "due": DUE, "last_evaluated_at": DUE - timedelta(days=182)},
    c.TaskHealthChanged: {
        "task_id": "t-1",
        "health": "at_risk",
        "previous": "on_track",
        "reason": "at 0.05 points a day it needs 800 more days, and 200 are left",
    },
    c.SupportRequested: {
        "request_id": "sr-1",
        "issue_id": "i-1",
        "task_id": "t-1",
        "departments": ["MOFCOM", "GACC"],
        "need": "Customs and trade policy guidance for the bonded zone",
        "by": DUE,
    },
    c.SupportAcknowledged: {"request_id": "sr-1", "issue_id": "i-1", "task_id": "t-1", "department": "MOFCOM"},
    c.SupportAnswered: {
        "request_id": "sr-1",
        "issue_id": "i-1",
        "task_id": "t-1",
        "department": "MOFCOM",
        "answer": "Guidance issued; a joint working group meets monthly",
    },
    c.SupportDeclined: {
        "request_id": "sr-1",
        "issue_id": "i-1",
        "task_id": "t-1",
        "department": "GACC",
        "reason": "outside customs' remit",
    },
    c.SupportRequestClosed: {"request_id": "sr-1", "issue_id": "i-1", "task_id": "t-1", "note": "resolved"},
    c.ReportSubmitted: {
        "report_id": "rep-1",
        "period_from": DUE - timedelta(days=182),
        "period_to": DUE,
        "sha256": "cd" * 32,
    },
    c.TaskAtRisk: {
        "alert_id": "al-5",
        "task_id": "t-1",
        "title": "Hydrogen vehicle cluster",
        "due": DUE,
        "departments": ["JILIN", "NDRC"],
        "reason": "no progress over the last reports",
    },
    c.SupportUnacknowledged: {
        "alert_id": "al-6",
        "task_id": "t-1",
        "title": "Hydrogen vehicle cluster",
        "due": DUE,
        "request_id": "sr-1",
        "department": "GACC",
        "departments": ["GACC", "NDRC"],
    },
    c.SupportOverdue: {
        "alert_id": "al-7",
        "task_id": "t-1",
        "title": "Hydrogen vehicle cluster",
        "due": DUE,
        "request_id": "sr-1",
        "department": "GACC",
        "departments": ["GACC", "NDRC"],
    },
    c.EvaluationFallingDue: {
        "alert_id": "al-8",
        "plan_id": "plan-cs-changchun",
        "title": "Evaluation due",
        "due": DUE,
        "departments": ["NDRC"],
    },
    c.DailyDigest: {
        "alert_id": "al-9",
        "department": "JILIN",
        "day": "2026-12-05",
        "items": [{"kind": "late", "task_id": "t-1", "milestone_id": "m-1", "title": "Stations", "due": DUE}],
        "departments": ["JILIN"],
    },
    c.CommandRejected: {
        "command_id": "cmd-1",
        "command": "report_progress",
        "status": 403,
        "reason": "MOST is not a lead or supporting department of t-1",
        "errors": [{"field": "task_id", "message": "not your responsibility"}],
    },
    c.CheckpointSigned: {
        "sequence": 1000,
        "head_hash": "ab" * 32,
        "signed_at": DUE,
        "key_id": "audit-1",
        "signature": "c2lnbmF0dXJl",
    },
    c.TreeCheckpoint: {
        "chain": "audit-chain",
        "size": 1000,
        "root_hash": "q" * 43 + "=",
        "head_hash": "ab" * 32,
        "note": "policytrack.local/audit-chain\n1000\n" + "q" * 43 + "=\n\n\u2014 policytrack.local/audit-chain c2ln\n",
        "key_id": "0123456789abcdef",
        "signed_at": DUE,
    },
    c.ForgeryDetected: {
        "chain": "audit-chain",
        "record_topic": "policy.events",
        "record_partition": 1,
        "record_offset": 4711,
        "record_sha256": "ef" * 32,
        "reason": "carries no writer's proof",
        "claimed_type": "org.policytrack.task.completed.v1",
        "claimed_id": "e-forged",
    },
}


def sample_events(*, actor: str = "u-jilin-1", actordept: Department = Department.JILIN) -> list[CloudEvent[Any]]:
    return [
        new_event(data_class.model_validate(kwargs), actor=actor, actordept=actordept, aggregateversion=1)
        for data_class, kwargs in PAYLOADS.items()
    ]


START = datetime(2026, 12, 1, 8, tzinfo=UTC)


def plan_log() -> list[AnyEvent]:
    """Six tasks with progress, an issue of each (another aggregate, often on another
    partition than its task) and evaluations of the plan, in the order they were written."""
    moments = (START + timedelta(seconds=n) for n in range(10_000))
    events: list[AnyEvent] = []

    def write(data: c.EventData, version: int, key: str | None = None) -> None:
        events.append(
            new_event(
                data,
                actor="u-jilin-1",
                actordept=Department.JILIN,
                aggregateversion=version,
                idempotencykey=key,
                requestdigest=key and hashlib.sha256(key.encode()).hexdigest(),
                time=next(moments),
            )
        )

    for t in range(6):
        task_id = f"task-{t}"
        created = c.TaskCreated(task_id=task_id, plan_id="plan-1", title="Port", field=CooperationField.TRADE, due=DUE)
        write(created, 1, key=f"create-{t}")
        write(c.IssueReported(issue_id=f"issue-{t}", task_id=task_id, title="Customs", severity=Severity.MAJOR), 1)
    for week in range(2, 6):
        for t in range(6):
            write(
                c.TaskProgressReported(task_id=f"task-{t}", percent=week * 10, note="weekly"), week, key=f"p-{t}-{week}"
            )
        write(c.EvaluationRecorded(evaluation_id=f"eval-{week}", plan_id="plan-1", rating=Rating.GOOD), 1)
    return events
