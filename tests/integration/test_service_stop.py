"""Every service stops when asked: SIGTERM ends each background loop at once (consumers commit
what they handled, partitions are given back), none has to be cancelled after the grace period.
A service that lingers holds its partitions from the instance that takes over, and its port
from the one that replaces it."""

from __future__ import annotations

import uuid

import pytest

from shared.supervision import DID_NOT_STOP
from tests.conftest import ServiceFactory

ALONE: dict[str, dict[str, str]] = {"tasks": {}, "notifications": {}, "audit": {}}
SEVERAL = {
    "tasks": {
        "POLICYTRACK_TASKS_PARTITIONED_WRITERS": "true",
        "POLICYTRACK_TASKS_TRANSACTIONAL_ID": f"policytrack-tasks-owners-{uuid.uuid4().hex[:8]}",
        "POLICYTRACK_TASKS_CONSUMER_GROUP": f"policytrack-tasks-owners-{uuid.uuid4().hex[:8]}",
    },
    "notifications": {
        "POLICYTRACK_NOTIFICATIONS_PARTITIONED": "true",
        "POLICYTRACK_NOTIFICATIONS_OWNERS_GROUP": f"policytrack-notifications-owners-{uuid.uuid4().hex[:8]}",
    },
}
CASES = [(name, "alone", env) for name, env in ALONE.items()] + [
    (name, "one of several", env) for name, env in SEVERAL.items()
]


@pytest.mark.parametrize(("name", "how", "env"), CASES, ids=[f"{name} {how}" for name, how, _ in CASES])
def test_a_service_asked_to_stop_ends_every_loop_itself(
    service_factory: ServiceFactory, name: str, how: str, env: dict[str, str]
) -> None:
    service = service_factory(name, **env).start()
    service.stop()
    assert "Application shutdown complete" in service.log(tail=100_000), service.log()
    assert DID_NOT_STOP not in service.log(tail=100_000), service.log()
