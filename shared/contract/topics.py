"""The project's four topics: names, purposes and retention. Part of the contract."""

from __future__ import annotations

from dataclasses import dataclass, field

COMMANDS = "policy.commands"
EVENTS = "policy.events"
ALERTS = "policy.alerts"
DEADLETTER = "policy.deadletter"

FOREVER = "-1"
WEEK_MS = str(7 * 24 * 3600 * 1000)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    purpose: str
    configs: dict[str, str] = field(default_factory=dict)


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(COMMANDS, "commands from departmental systems, each answered by events", {"retention.ms": WEEK_MS}),
    TopicSpec(EVENTS, "the domain events: the record of the plan's implementation", {"retention.ms": FOREVER}),
    TopicSpec(ALERTS, "deadline alerts and notification subscriptions", {"retention.ms": FOREVER}),
    TopicSpec(DEADLETTER, "records no consumer could handle, with the reason", {"retention.ms": FOREVER}),
)
