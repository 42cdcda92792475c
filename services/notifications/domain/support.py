"""The watch on support requests: an asked department that has not acknowledged within five
working days (the official calendar's, where the deployment is), or not answered by the
request's "by when", is alerted, with the NDRC. Pure."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from shared.contract import catalog as c
from shared.contract.codes import Department
from shared.domain.calendar import WorkingCalendar

SUPPORT_NAMESPACE = uuid.UUID("0b7f2c4e-9d61-4f0a-8a1e-3c5d7e9f1a2b")
ACKNOWLEDGE_WITHIN_WORKING_DAYS = 5


@dataclass
class Watched:
    """One asked department's part of one request."""

    request_id: str
    task_id: str
    department: Department
    title: str
    acknowledge_by: datetime
    answer_by: datetime
    acknowledged: bool = False
    answered: bool = False


@dataclass
class SupportWatch:
    watched: dict[tuple[str, Department], Watched] = field(default_factory=dict)
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar)

    def apply(self, event: c.SupportRequestEvent, at: datetime, title: str) -> None:
        match event:
            case c.SupportRequested():
                acknowledge_by = self.calendar.working_days_after(at, ACKNOWLEDGE_WITHIN_WORKING_DAYS)
                for department in event.departments:
                    self.watched[(event.request_id, department)] = Watched(
                        event.request_id, event.task_id, department, title, acknowledge_by, event.by
                    )
            case c.SupportAcknowledged():
                if (part := self.watched.get((event.request_id, event.department))) is not None:
                    part.acknowledged = True
            case c.SupportAnswered() | c.SupportDeclined():
                self.watched.pop((event.request_id, event.department), None)
            case c.SupportRequestClosed():
                for key in [key for key in self.watched if key[0] == event.request_id]:
                    del self.watched[key]

    def due_alerts(self, now: datetime, emitted: set[str]) -> list[c.Notice]:
        """Alerts whose time has come and that were not emitted yet."""
        alerts: list[c.Notice] = []
        for part in self.watched.values():
            if not part.acknowledged and part.acknowledge_by <= now:
                alerts.append(self._alert(c.SupportUnacknowledged, part, part.acknowledge_by))
            if part.answer_by <= now:
                alerts.append(self._alert(c.SupportOverdue, part, part.answer_by))
        return [alert for alert in alerts if alert.alert_id not in emitted]

    @staticmethod
    def _alert(kind: type[c.SupportUnacknowledged | c.SupportOverdue], part: Watched, due: datetime) -> c.Notice:
        alert_id = str(uuid.uuid5(SUPPORT_NAMESPACE, f"{part.request_id}/{part.department}/{kind.event_type}"))
        return kind(
            alert_id=alert_id,
            task_id=part.task_id,
            title=part.title,
            due=due,
            request_id=part.request_id,
            department=part.department,
            departments=(part.department, Department.NDRC),
        )
