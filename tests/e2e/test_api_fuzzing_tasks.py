"""Schemathesis over the tasks service's API (``fuzzing.py`` says how), with ids it makes up and
with ids of real aggregates, then along the document's links."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import JILIN, ServiceFactory
from tests.e2e.fuzzing import assert_clean, links_covered, schemathesis, seeded


def test_the_tasks_api(service_factory: ServiceFactory, tmp_path: Path) -> None:
    tasks, ids = seeded(service_factory)
    real = {"/v1/tasks": {"plan_id": ids["plan_id"]}}
    assert_clean(schemathesis(tasks, JILIN, tmp_path, body=real))
    assert_clean(schemathesis(tasks, JILIN, tmp_path, ids, body=real))
    chains = schemathesis(tasks, JILIN, tmp_path, stateful=True, body=real)
    assert_clean(chains)
    # Plans, tasks, milestones, issues, approvals and support requests made and then acted on.
    assert links_covered(chains) >= 10, chains.stdout[-3000:]
