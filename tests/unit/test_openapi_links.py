"""The services' OpenAPI documents link what a call makes to the calls that use it: the links a
client (and the fuzzer's stateful phase) follows from one answer to the next request."""

from __future__ import annotations

from typing import Any

import pytest

from services.audit.entrypoints.app import create_app as audit_app
from services.notifications.entrypoints.app import create_app as notifications_app
from services.tasks.entrypoints.app import create_app as tasks_app
from shared.http.links import fills, link_operations


class NoRuntime:
    """Enough of a runtime to build an app's document, which starts nothing."""

    verifier = None


def links(document: dict[str, Any], method: str, path: str, status: str) -> dict[str, Any]:
    found: dict[str, Any] = document["paths"][path][method]["responses"][status].get("links", {})
    return found


def test_a_new_task_is_linked_to_what_is_done_with_it() -> None:
    document = tasks_app(NoRuntime()).openapi()  # type: ignore[arg-type]  # the document needs no runtime
    made = links(document, "post", "/v1/tasks", "201")
    assert made["GET /v1/tasks/{task_id}"]["parameters"] == {"task_id": "$response.body#/id"}
    assert (
        made["POST /v1/tasks/{task_id}/milestones"]["operationId"]
        == (document["paths"]["/v1/tasks/{task_id}/milestones"]["post"]["operationId"])
    )
    milestone = links(document, "post", "/v1/tasks/{task_id}/milestones", "201")
    assert milestone["POST /v1/tasks/{task_id}/milestones/{milestone_id}/met"]["parameters"] == {
        "task_id": "$request.path.task_id",
        "milestone_id": "$response.body#/id",
    }
    issue = links(document, "post", "/v1/tasks/{task_id}/issues", "201")
    assert set(issue) == {
        "GET /v1/issues/{issue_id}",
        "POST /v1/issues/{issue_id}/escalate",
        "POST /v1/issues/{issue_id}/resolve",
        "POST /v1/issues/{issue_id}/support-requests",
    }
    assert "x-fills" not in document["paths"]["/v1/tasks"]["post"]


@pytest.mark.parametrize(
    ("app", "method", "path", "status", "target"),
    [
        (notifications_app, "post", "/v1/subscriptions", "201", "DELETE /v1/subscriptions/{subscription_id}"),
        (audit_app, "get", "/v1/audit/events", "200", "GET /v1/audit/acts/{event_id}"),
    ],
)
def test_each_service_links_what_it_makes(app: Any, method: str, path: str, status: str, target: str) -> None:
    assert target in links(app(NoRuntime()).openapi(), method, path, status)


def test_a_link_needs_every_parameter_of_its_target() -> None:
    document: dict[str, Any] = {
        "paths": {
            "/things": {
                "post": {"operationId": "make", "responses": {"201": {}}, **fills(thing_id="$response.body#/id")}
            },
            "/things/{thing_id}": {"get": {"operationId": "read", "responses": {"200": {}}}},
            "/boxes/{box_id}/things/{thing_id}": {"get": {"operationId": "in_box", "responses": {"200": {}}}},
        }
    }
    link_operations(document)
    assert links(document, "post", "/things", "201") == {
        "GET /things/{thing_id}": {"operationId": "read", "parameters": {"thing_id": "$response.body#/id"}}
    }
