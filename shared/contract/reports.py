"""The shape of the reports the audit service publishes, for those who read them (the
dashboard): the responsibility table's columns, in the order people read them."""

from __future__ import annotations

RESPONSIBILITY_COLUMNS = (
    "lead",
    "supporting",
    "acts",
    "done",
    "late",
    "at_risk",
    "escalated",
    "support_received",
    "support_answered_in_time",
    "support_late",
    "support_declined",
    "support_unanswered",
    "evaluations_overdue",
)
"""What a department was given and did; then, as lead, its tasks done, late, at risk and
escalated; then, as a supporting department, how it answered the support asked of it (in time,
late, declined, still unanswered past the date asked)."""

WORSE_WHEN_MORE = frozenset(
    {"late", "at_risk", "escalated", "support_late", "support_declined", "support_unanswered", "evaluations_overdue"}
)
"""The columns where a higher count is worse for the department."""
