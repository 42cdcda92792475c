"""Schemathesis over the three services' OpenAPI documents, with a token, against the real
broker: examples, the coverage phase (edge and negative cases) and fuzzing, 40 cases per
operation, once with ids it makes up and once with ids of real aggregates; then the stateful
phase, which follows the documents' links from what one call makes to the calls that use it.
No server error, and no response that contradicts the document (status, content type, headers,
body). Each call goes with the token of the department whose act it is (``schemathesis_hooks``).

One test file per service (``test_api_fuzzing_*.py``), so that the test workers run them at once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from policytrack.processes import ServiceProcess
from shared.settings import PROJECT_ROOT as ROOT
from tests.conftest import JILIN, NDRC, SC, ServiceFactory

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
    "response_schema_conformance"
)


def schemathesis(
    service: ServiceProcess,
    headers: dict[str, str],
    tmp_path: Path,
    parameters: dict[str, str] | None = None,
    *,
    stateful: bool = False,
    body: dict[str, dict[str, str]] | None = None,
) -> subprocess.CompletedProcess[str]:
    """One run: the stateless phases (every mode, 40 cases per operation), or the stateful phase
    (chains of calls along the documents' links, valid data only so that chains get deep)."""
    config = tmp_path / f"schemathesis-{service.name}-{len(parameters or {})}-{stateful}.toml"
    exclude = ["--exclude-path", "/v1/alerts/stream"] if service.name == "notifications" else []
    lines = ["request-timeout = 30.0"]
    if parameters:
        lines.append("[parameters]")
        lines += [f'"{name}" = "{value}"' for name, value in parameters.items()]
    config.write_text("\n".join(lines) + "\n")
    phases = ["--phases", "stateful", "--mode", "positive", "--max-examples", "100"]
    if not stateful:
        phases = ["--phases", "examples,coverage,fuzzing", "--max-examples", "40"]
    tokens = {"default": headers["Authorization"], "SC": SC["Authorization"], "NDRC": NDRC["Authorization"]}
    environment = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks",
        "PYTHONPATH": str(ROOT),
        "POLICYTRACK_FUZZ_TOKENS": json.dumps(tokens),
        "POLICYTRACK_FUZZ_BODY": json.dumps(body or {}),
    }
    # One worker: CPython 3.11's ast.parse is not safe across threads, and Hypothesis calls it.
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "st"),
            "--config-file",
            str(config),
            "run",
            f"{service.url}/openapi.json",
            "--checks",
            CHECKS,
            *phases,
            "--workers",
            "1",
            "--seed",
            "20261129",
            "--no-color",
            *exclude,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=environment,
        cwd=ROOT,
    )


def links_covered(result: subprocess.CompletedProcess[str]) -> int:
    """How many of the document's links the stateful phase followed with a successful call."""
    found = re.search(r"API Links:\s+(\d+) covered", result.stdout)
    assert found, f"no stateful phase ran:\n{result.stdout[-3000:]}"
    return int(found.group(1))


def assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    summary = result.stdout[result.stdout.find("FAILURES") :] if "FAILURES" in result.stdout else result.stdout[-3000:]
    assert result.returncode == 0, f"schemathesis found problems:\n{summary[:12000]}\n{result.stderr[-2000:]}"


def seeded(service_factory: ServiceFactory) -> tuple[ServiceProcess, dict[str, str]]:
    """A tasks service holding one aggregate of each kind, and their ids."""
    tasks = service_factory("tasks").start()
    with httpx.Client(base_url=tasks.url, timeout=30) as client:
        plan = client.post("/v1/plans", headers=SC, json={"title": "Plan"}).json()["id"]
        task = client.post(
            "/v1/tasks",
            headers=JILIN,
            json={
                "plan_id": plan,
                "title": "Fuzzed",
                "field": "trade",
                "lead_department": "JILIN",
                "supporting_departments": ["GACC"],
                "due": "2030-01-01T00:00:00Z",
            },
        ).json()["id"]
        milestone = client.post(
            f"/v1/tasks/{task}/milestones", headers=JILIN, json={"title": "m", "due": "2029-01-01T00:00:00Z"}
        ).json()["id"]
        issue = client.post(f"/v1/tasks/{task}/issues", headers=JILIN, json={"title": "i", "severity": "high"})
        approval = client.post(f"/v1/tasks/{task}/approvals", headers=JILIN, json={"kind": "policy", "title": "a"})
    return tasks, {
        "plan_id": plan,
        "task_id": task,
        "milestone_id": milestone,
        "issue_id": issue.json()["id"],
        "approval_id": approval.json()["id"],
    }
