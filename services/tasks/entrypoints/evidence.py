"""Evidence: files uploaded before the act that names them, and served to those who may read
the task, only while their bytes still have the hash the trail holds."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse

from services.tasks.adapters.evidence import EvidenceRefused, Tampered
from services.tasks.application.queries import evidence_of, readable_task
from services.tasks.entrypoints.dependencies import AggregateIdPath, State, runtime
from shared.auth import can_write
from shared.contract.catalog import Evidence
from shared.contract.codes import Role
from shared.contract.types import EVIDENCE_TYPES, SHA256_PATTERN, FileName
from shared.http.problems import Problem, problem_responses
from shared.http.service import Authenticated

router = APIRouter(tags=["evidence"])
UPLOAD = "/v1/evidence"
Sha256Path = Annotated[
    str, Path(pattern=SHA256_PATTERN, examples=["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"])
]


@router.post(
    UPLOAD,
    status_code=201,
    response_model=Evidence,
    responses=problem_responses(401, 403, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {kind: {"schema": {"type": "string", "format": "binary"}} for kind in EVIDENCE_TYPES},
        }
    },
    summary="Upload a file as evidence (the body is the file, Content-Type its type); name it in the act it supports",
)
async def upload(
    request: Request, actor: Authenticated, name: Annotated[FileName, Query(description="the file's name")]
) -> JSONResponse:
    if not can_write(actor):
        raise Problem(403, "only those who act upload evidence")
    tasks = await runtime(request)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > tasks.evidence.max_bytes:
        raise Problem(413, f"evidence is at most {tasks.evidence.max_bytes} bytes", field="body")
    claimed = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    try:
        kept = await tasks.evidence.keep(request.stream(), name, claimed)
    except EvidenceRefused as refused:
        raise Problem(refused.status, str(refused), field=refused.field) from refused
    return JSONResponse(kept.model_dump(mode="json"), status_code=201)


@router.get(
    "/v1/tasks/{task_id}/evidence/{sha256}",
    response_class=FileResponse,
    responses={
        200: {"content": {kind: {} for kind in EVIDENCE_TYPES}, "description": "the file, as uploaded"},
        **problem_responses(401, 404, 409, 422),
    },
    summary="A file the task's acts rest on, checked against its SHA-256 before a byte is sent",
)
async def download(
    request: Request, task_id: AggregateIdPath, sha256: Sha256Path, actor: Authenticated, state: State
) -> FileResponse:
    task = readable_task(state.task(task_id), actor)
    evidence = evidence_of(state, task).get(sha256) if task is not None else None
    if evidence is None:
        raise Problem(404, f"task {task_id} has no evidence {sha256} you may read")
    try:
        path = await (await runtime(request)).evidence.checked(sha256)
    except Tampered as error:
        raise Problem(409, f"{error}: it is not served", field="sha256") from error
    return FileResponse(
        path,
        media_type=evidence.media_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(evidence.name)}",
            "X-Content-Type-Options": "nosniff",
            "Digest": f"sha-256={sha256}",
        },
    )


@router.get(
    "/v1/evidence/check",
    responses=problem_responses(401, 403),
    summary="Every stored evidence file read again: those whose bytes no longer have their hash",
)
async def check(request: Request, actor: Authenticated) -> dict[str, Any]:
    if not actor.has(Role.AUDITOR, Role.ADMIN, Role.SUPERVISOR):
        raise Problem(403, "the auditors, the supervisor and admins check the evidence")
    count, mismatches = await (await runtime(request)).evidence.check()
    return {
        "checked": count,
        "mismatched": [{"sha256": m.sha256, "found": m.found} for m in mismatches],
        "ok": not mismatches,
    }
