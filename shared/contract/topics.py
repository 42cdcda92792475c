"""The project's topics: names, purposes and retention. Part of the contract."""

from __future__ import annotations

from dataclasses import dataclass, field

COMMANDS = "policy.commands"
EVENTS = "policy.events"
ALERTS = "policy.alerts"
DEADLETTER = "policy.deadletter"
AUDIT = "policy.audit"

FOREVER = "-1"
WEEK_MS = str(7 * 24 * 3600 * 1000)
KEPT = {"retention.ms": FOREVER, "message.timestamp.type": "LogAppendTime"}
"""Records kept forever, stamped by the broker: a record's time is when the log took it, which
no writer can backdate (a retired key's validity window is judged by it)."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    purpose: str
    configs: dict[str, str] = field(default_factory=dict)


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(COMMANDS, "commands from departmental systems, each answered by events", {"retention.ms": WEEK_MS}),
    TopicSpec(EVENTS, "the domain events: the record of the plan's implementation", KEPT),
    TopicSpec(ALERTS, "deadline alerts and notification subscriptions", KEPT),
    TopicSpec(DEADLETTER, "records no consumer could handle, with the reason", KEPT),
    TopicSpec(
        AUDIT,
        "the audit service's own records: signed checkpoints of the trail, forgeries found, reports submitted",
        KEPT,
    ),
)
