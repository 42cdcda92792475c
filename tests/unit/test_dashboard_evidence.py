"""Evidence from the dashboard (issue 30, item 1), in process against a stand-in of the tasks
service: a file chosen in a form is uploaded first and named in the command with its hash; a
file the service refuses is said beside the field and nothing is sent; the task page lists the
files and passes a download on as the service serves it."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from tests.unit.test_dashboard_acts import TasksStandIn, posted
from tests.unit.test_dashboard_edge import TASK, sign_in, web_app

PDF = b"%PDF-1.7\n" + b"0" * 300_000 + b"\n%%EOF\n"
SHA = hashlib.sha256(PDF).hexdigest()
KEPT = {"name": "验收报告.pdf", "media_type": "application/pdf", "size": len(PDF), "sha256": SHA}


class Served(httpx.AsyncByteStream):
    """A body the stand-in sends as a stream, as the service does."""

    def __init__(self, content: bytes) -> None:
        self.content = content

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.content


class EvidenceStandIn(TasksStandIn):
    """Also keeps uploads (or refuses them with ``refusal``) and serves the one file it holds."""

    def __init__(self) -> None:
        super().__init__()
        self.uploads: list[httpx.Request] = []
        self.refusal: httpx.Response | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/evidence":
            self.uploads.append(request)
            return self.refusal or httpx.Response(201, json={**KEPT, "name": request.url.params["name"]})
        if request.url.path == f"/v1/tasks/task-hydrogen/evidence/{SHA}":
            disposition = "attachment; filename*=UTF-8''%E9%AA%8C%E6%94%B6.pdf"
            return httpx.Response(
                200, stream=Served(PDF), headers={"content-type": "application/pdf", "content-disposition": disposition}
            )
        if request.url.path == "/v1/tasks/task-hydrogen":
            milestone = {
                "milestone_id": "m1",
                "title": "海关验收",
                "due": TASK["due"],
                "met_at": TASK["updated_at"],
                "evidence": [KEPT],
            }
            return httpx.Response(200, json={**TASK, "milestones": [milestone]})
        return super().__call__(request)


@pytest.fixture
def tasks() -> EvidenceStandIn:
    return EvidenceStandIn()


@pytest.fixture
async def dashboard(tasks: EvidenceStandIn) -> AsyncIterator[httpx.AsyncClient]:
    async with web_app(answer=tasks) as client:
        await sign_in(client, "JILIN", "implementer")
        yield client


async def test_a_file_chosen_in_the_form_is_uploaded_then_named_in_the_command(
    dashboard: httpx.AsyncClient, tasks: EvidenceStandIn
) -> None:
    page = (await dashboard.get("/tasks/task-hydrogen")).text
    form_html = page.split('id="act-report_progress-task-hydrogen"', 1)[1].split("</details>", 1)[0]
    assert 'enctype="multipart/form-data"' in form_html and 'type="file"' in form_html
    form = posted(page, "act-report_progress-task-hydrogen", percent="60", note="海关验收完成")
    answer = await dashboard.post(
        "/tasks/task-hydrogen/act", data=form, files={"evidence": ("验收报告.pdf", PDF, "application/pdf")}
    )
    assert answer.status_code == 303, answer.text
    upload = tasks.uploads[0]
    assert upload.content == PDF and upload.headers["content-type"] == "application/pdf"
    assert upload.url.params["name"] == "验收报告.pdf"
    assert upload.headers["authorization"].startswith("Bearer ")
    assert orjson.loads(tasks.sent[-1].content) == {"percent": 60, "note": "海关验收完成", "evidence": [KEPT]}


async def test_a_refused_file_is_said_beside_the_field_and_no_act_is_sent(
    dashboard: httpx.AsyncClient, tasks: EvidenceStandIn
) -> None:
    tasks.refusal = httpx.Response(
        415, json={"status": 415, "detail": "the file's content is image/png, not application/pdf"}
    )
    page = (await dashboard.get("/tasks/task-hydrogen")).text
    form = posted(page, "act-report_progress-task-hydrogen", percent="60")
    answer = await dashboard.post(
        "/tasks/task-hydrogen/act", data=form, files={"evidence": ("scan.pdf", b"\x89PNG\r\n\x1a\n", "application/pdf")}
    )
    assert 'id="act-report_progress-task-hydrogen-evidence-error">the file&#39;s content is image/png' in answer.text
    assert [r for r in tasks.sent if r.url.path.endswith("/progress")] == [], "no act without its evidence"


async def test_a_form_without_files_sends_no_upload(dashboard: httpx.AsyncClient, tasks: EvidenceStandIn) -> None:
    page = (await dashboard.get("/tasks/task-hydrogen")).text
    form = posted(page, "act-report_progress-task-hydrogen", percent="60")
    answer = await dashboard.post(
        "/tasks/task-hydrogen/act", data=form, files={"evidence": ("", b"", "application/octet-stream")}
    )
    assert answer.status_code == 303 and tasks.uploads == []
    assert "evidence" not in orjson.loads(tasks.sent[-1].content)


async def test_the_task_page_lists_the_files_and_the_download_is_the_services(dashboard: httpx.AsyncClient) -> None:
    page = (await dashboard.get("/tasks/task-hydrogen")).text
    assert "里程碑完成：海关验收" in page and f'href="/tasks/task-hydrogen/evidence/{SHA}"' in page
    download = await dashboard.get(f"/tasks/task-hydrogen/evidence/{SHA}")
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["x-content-type-options"] == "nosniff"
    assert (await dashboard.get("/tasks/task-hydrogen/evidence/not-a-hash")).status_code == 422
