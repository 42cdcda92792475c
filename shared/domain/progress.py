"""Progress per field of cooperation, counted one way for every reader: the dashboard's
overview and the NDRC's implementation report show the same numbers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.contract.codes import CooperationField, TaskHealth
from shared.domain.state import Task


@dataclass(frozen=True)
class FieldProgress:
    field: CooperationField
    tasks: int
    average_percent: float
    """The mean of its tasks' reported progress, to one decimal."""
    done: int
    """Tasks closed: completed or cancelled."""
    late: int
    at_risk: int
    """Open, not yet late, and at risk by the rule in docs/health.md."""


def field_progress(tasks: list[Task], at: datetime) -> list[FieldProgress]:
    """The fields that have tasks, in the plan's order."""
    rows = []
    for field in CooperationField:
        mine = [t for t in tasks if t.field == field]
        if mine:
            rows.append(
                FieldProgress(
                    field=field,
                    tasks=len(mine),
                    average_percent=round(sum(t.percent for t in mine) / len(mine), 1),
                    done=sum(1 for t in mine if not t.is_open),
                    late=sum(1 for t in mine if t.is_overdue(at)),
                    at_risk=sum(
                        1 for t in mine if t.is_open and not t.is_overdue(at) and t.health is TaskHealth.AT_RISK
                    ),
                )
            )
    return rows
