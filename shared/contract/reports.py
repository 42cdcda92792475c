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
    "evaluations_overdue",
)
"""What a department was given, what it did, then what went wrong and how it answered support."""
