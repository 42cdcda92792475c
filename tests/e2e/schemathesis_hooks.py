"""Hooks the schemathesis runs in ``fuzzing.py`` load (``SCHEMATHESIS_HOOKS``): each call
goes with the token of the department whose act it is, and a few body fields that must name
something real (the plan of a new task, a webhook that may be called) are set, so that chains of
calls in the stateful phase get past who-may-do-what and reach what lies behind it."""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis

# Which department acts, by the route's path; anything else goes with the run's own token.
ACTS_BY = (
    ("/v1/plans/{plan_id}/evaluations", "NDRC"),
    ("/v1/tasks/{task_id}/evaluations", "NDRC"),
    ("/v1/issues/{issue_id}/escalate", "NDRC"),
    ("/v1/approvals/{approval_id}/decision", "SC"),
    ("/v1/plans", "SC"),
)


def _given(name: str) -> dict[str, Any]:
    return dict(json.loads(os.environ.get(name, "{}")))


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    tokens = _given("POLICYTRACK_FUZZ_TOKENS")
    department = "default"
    if case.method.upper() == "POST":
        department = next((who for path, who in ACTS_BY if case.operation.path.startswith(path)), department)
    if department in tokens:
        case.headers = {**(case.headers or {}), "Authorization": tokens[department]}
    real = _given("POLICYTRACK_FUZZ_BODY").get(case.operation.path, {})
    if isinstance(case.body, dict):
        case.body.update({name: value for name, value in real.items() if name in case.body})
