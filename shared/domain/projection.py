"""The projection of the log: every aggregate's current state folded with ``evolve``."""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TypeVar

from shared.contract.catalog import EvaluationRecorded
from shared.contract.envelope import AnyEvent
from shared.domain.evolve import DOMAIN_TYPES, evolve
from shared.domain.state import Aggregate, Approval, Evaluation, Issue, Plan, SupportRequest, Task

A = TypeVar("A", Plan, Task, Issue, Approval, Evaluation, SupportRequest)


@dataclass
class Projection:
    """Every aggregate's current state, folded from the log with ``evolve``.

    ``apply`` ignores what it has already seen (a re-delivered event carries an aggregate
    version at or below the state's), so replaying a log twice changes nothing.
    """

    aggregates: MutableMapping[str, Aggregate] = field(default_factory=dict)
    last_event_time: datetime | None = None
    plan_evaluated: dict[str, datetime] = field(default_factory=dict)
    """Per plan: when it was last evaluated as a whole."""
    changed: set[str] = field(default_factory=set)
    """Aggregates changed since whoever keeps a copy of the state (a snapshot) last took them."""

    def apply(self, event: AnyEvent) -> bool:
        """Fold one event in; False when it was already applied or does not change state."""
        if event.type not in DOMAIN_TYPES:
            return False
        current = self.aggregates.get(event.subject)
        if current is not None and event.aggregateversion is not None and event.aggregateversion <= current.version:
            return False
        self.aggregates[event.subject] = evolve(current, event)
        self.changed.add(event.subject)
        self._remember(event)
        return True

    def preview(self, events: Iterable[AnyEvent]) -> dict[str, Aggregate]:
        """The states ``events`` would lead to, leaving the projection as it is: a write evolves
        its events before it appends them, so an event that cannot be applied is never appended."""
        states: dict[str, Aggregate] = {}
        for event in events:
            if event.type in DOMAIN_TYPES:
                states[event.subject] = evolve(states.get(event.subject) or self.aggregates.get(event.subject), event)
        return states

    def overlaid(self, states: Mapping[str, Aggregate]) -> Projection:
        """The projection as it will be once ``states`` are adopted, for deciding a command while
        earlier ones are still being written; this projection is left as it is."""
        if not states:
            return self
        return replace(self, aggregates=ChainMap(dict(states), self.aggregates))

    def adopt(self, events: Iterable[AnyEvent], states: dict[str, Aggregate]) -> None:
        """Takes in the states ``preview`` computed, once their events are on the log."""
        self.aggregates.update(states)
        self.changed.update(states)
        for event in events:
            if event.type in DOMAIN_TYPES:
                self._remember(event)

    def extend(self, other: Projection) -> None:
        """Takes in a projection of other aggregates (a rebuild's part read other partitions;
        an aggregate's events are all on one)."""
        self.aggregates.update(other.aggregates)
        self.changed.update(other.aggregates)
        if other.last_event_time is not None:
            self.last_event_time = _later(self.last_event_time, other.last_event_time)
        for plan_id, moment in other.plan_evaluated.items():
            self.plan_evaluated[plan_id] = _later(self.plan_evaluated.get(plan_id), moment)

    def _remember(self, event: AnyEvent) -> None:
        data = event.data
        self.last_event_time = _later(self.last_event_time, event.time)
        if isinstance(data, EvaluationRecorded) and data.plan_id is not None:
            self.plan_evaluated[data.plan_id] = _later(self.plan_evaluated.get(data.plan_id), event.time)

    def kind_of(self, aggregate_id: str) -> str | None:
        """The type of the aggregate with this id, if there is one."""
        found = self.aggregates.get(aggregate_id)
        return None if found is None else type(found).__name__

    def get(self, aggregate_id: str, kind: type[A]) -> A | None:
        found = self.aggregates.get(aggregate_id)
        return found if isinstance(found, kind) else None

    def plan(self, plan_id: str) -> Plan | None:
        return self.get(plan_id, Plan)

    def task(self, task_id: str) -> Task | None:
        return self.get(task_id, Task)

    def issue(self, issue_id: str) -> Issue | None:
        return self.get(issue_id, Issue)

    def approval(self, approval_id: str) -> Approval | None:
        return self.get(approval_id, Approval)

    def support_request(self, request_id: str) -> SupportRequest | None:
        return self.get(request_id, SupportRequest)

    def plans(self) -> list[Plan]:
        return [a for a in self.aggregates.values() if isinstance(a, Plan)]

    def last_plan_evaluation(self, plan_id: str) -> datetime | None:
        return self.plan_evaluated.get(plan_id)

    def tasks(self) -> list[Task]:
        return [a for a in self.aggregates.values() if isinstance(a, Task)]

    def issues(self) -> list[Issue]:
        return [a for a in self.aggregates.values() if isinstance(a, Issue)]

    def approvals(self) -> list[Approval]:
        return [a for a in self.aggregates.values() if isinstance(a, Approval)]

    def support_requests(self) -> list[SupportRequest]:
        return [a for a in self.aggregates.values() if isinstance(a, SupportRequest)]

    def issues_of(self, task_id: str) -> list[Issue]:
        return [issue for issue in self.issues() if issue.task_id == task_id]

    def approvals_of(self, task_id: str) -> list[Approval]:
        return [approval for approval in self.approvals() if approval.task_id == task_id]

    def support_requests_of(self, task_id: str) -> list[SupportRequest]:
        return [request for request in self.support_requests() if request.task_id == task_id]


def _later(known: datetime | None, moment: datetime) -> datetime:
    # The latest time, not the last read: partitions are read in no order among themselves.
    return moment if known is None or moment > known else known
