"""What proves the trail: full verification, and the signed checkpoints with the keys that verify them."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Response
from fastapi import Path as FastApiPath
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, Field

from services.audit.adapters.chaining import decode_headers
from services.audit.adapters.schema import StoredEntry
from services.audit.adapters.store import AuditStore, EntryFilter
from services.audit.application import verification
from services.audit.application.export import ndjson_line
from services.audit.bootstrap import AuditRuntime
from services.audit.entrypoints.dependencies import EventIdPath, Runtime, Store, everything
from shared.auth import Actor
from shared.http.problems import Problem, problem_responses
from shared.http.service import Authenticated
from shared.provenance.seals import PROOF_HEADER, Proof
from shared.transparency import merkle
from shared.transparency.notes import verifier_key

router = APIRouter(tags=["audit"])


class VerificationAnswer(BaseModel):
    ok: bool
    entries: int
    checkpoints: int
    checkpoints_on_log: int
    against_log: bool
    divergence: dict[str, Any] | None
    problems: list[dict[str, Any]]
    covered: dict[str, Any]
    lag: dict[str, Any]
    forgeries: list[dict[str, Any]]
    untrusted_checkpoints: list[str]
    tree: dict[str, Any]


class CheckpointRow(BaseModel):
    sequence: int
    head_hash: str
    signed_at: str
    key_id: str
    signature: str
    published: bool
    root_hash: str | None
    note: str | None


class CheckpointsAnswer(BaseModel):
    chain: str
    key_id: str
    public_key: str
    keys: list[dict[str, str]]
    checkpoints: list[CheckpointRow]


@router.get(
    "/v1/audit/verify",
    response_model=VerificationAnswer,
    responses={
        200: {
            "content": {
                "application/x-ndjson": {
                    "schema": {"type": "string"},
                    "description": 'with progress=true: {"checked": n, "of": total} lines, then {"result": ...}',
                }
            },
            "description": "the verification's result (with progress=true, preceded by its progress)",
        },
        **problem_responses(401, 403, 422, 429),
    },
    summary="Recompute the chain, check checkpoints, compare every entry with the Kafka log",
    description="One verification runs at a time: a request made while one runs waits for its result. "
    "Each user may wait on a bounded number at once (`POLICYTRACK_AUDIT_VERIFYING`); over it, 429.",
)
async def verify(actor: Authenticated, runtime: Runtime, against_log: bool = True, progress: bool = False) -> Response:
    everything(actor)
    if progress:
        return StreamingResponse(_verifying(actor, runtime, against_log), media_type="application/x-ndjson")
    return JSONResponse(await _verified(actor, runtime, against_log))


async def _verified(
    actor: Actor, runtime: AuditRuntime, against_log: bool, progress: verification.Progress | None = None
) -> dict[str, Any]:
    """Verifies (or waits for the verification running now), and records who verified, when,
    and what they found."""
    with runtime.verifying.holding(actor.user):
        result = await runtime.verifications.result(against_log, progress)
    await runtime.store.record_verification(
        at=runtime.clock(),
        by_user=actor.user,
        by_department=str(actor.department),
        ok=result.ok,
        entries=result.entries,
        checkpoints=result.checkpoints,
        against_log=result.against_log,
    )
    return result.as_dict()


async def _verifying(actor: Actor, runtime: AuditRuntime, against_log: bool) -> AsyncIterator[bytes]:
    """Progress lines as chunks of entries are checked (the latest only, if the reader lags),
    then the result. A reader that goes away stops the verification."""
    checked: asyncio.Queue[tuple[int, int] | None] = asyncio.Queue()
    running = asyncio.create_task(_verified(actor, runtime, against_log, lambda n, of: checked.put_nowait((n, of))))
    running.add_done_callback(lambda _: checked.put_nowait(None))
    try:
        while True:
            arrived = [await checked.get()]
            while not checked.empty():
                arrived.append(checked.get_nowait())
            counts = [count for count in arrived if count is not None]
            if counts:
                yield orjson.dumps({"checked": counts[-1][0], "of": counts[-1][1]}) + b"\n"
            if None in arrived:
                break
        yield orjson.dumps({"result": await running}) + b"\n"
    finally:
        running.cancel()


class Verification(BaseModel):
    verified_at: str
    by: str
    department: str
    ok: bool
    entries: int
    checkpoints: int
    against_log: bool


class Verifications(BaseModel):
    items: list[Verification]


@router.get(
    "/v1/audit/verifications",
    response_model=Verifications,
    responses=problem_responses(401, 422),
    summary="Who verified the trail lately, when, and what they found (the latest first)",
)
async def verifications(
    actor: Authenticated, store: Store, limit: Annotated[int, Query(ge=1, le=100)] = 10
) -> dict[str, Any]:
    rows = await store.verifications(limit)
    return {
        "items": [
            {
                "verified_at": row.verified_at,
                "by": row.by_user,
                "department": row.by_department,
                "ok": row.ok,
                "entries": row.entries,
                "checkpoints": row.checkpoints,
                "against_log": row.against_log,
            }
            for row in rows
        ]
    }


@router.get(
    "/v1/audit/checkpoints",
    response_model=CheckpointsAnswer,
    responses=problem_responses(401),
    summary="Signed checkpoints and the keys that verify them",
)
async def checkpoints(actor: Authenticated, runtime: Runtime) -> dict[str, Any]:
    return await runtime.checkpointer.published(runtime.trusted_keys)


class ActRecord(BaseModel):
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: str | None
    value: str | None
    headers: list[tuple[str, str | None]]


class ActAnswer(BaseModel):
    event: dict[str, Any]
    records: list[ActRecord]
    """The event's record as the log holds it, then the records of its writer's chain up to the
    one whose signature closes it: what a verifier needs to check the writer's proof alone."""


@router.get(
    "/v1/audit/acts/{event_id}",
    response_model=ActAnswer,
    responses=problem_responses(401, 403, 404, 422),
    summary="An act as the trail holds it, with what proves who wrote it (policytrack verify-act checks it)",
)
async def act(event_id: EventIdPath, actor: Authenticated, store: Store) -> dict[str, Any]:
    everything(actor)
    rows, _ = await store.page(StoredEntry, EntryFilter(event_id=event_id), 1)
    if not rows:
        raise Problem(404, f"no entry of the trail is the event {event_id}")
    entry = rows[0]
    return {"event": orjson.loads(ndjson_line(entry))["event"], "records": await writer_run(store, entry)}


async def writer_run(store: AuditStore, entry: StoredEntry, limit: int = 10_000) -> list[dict[str, Any]]:
    """The entry's record and those after it of the same writer session, up to its next signature."""
    first = Proof.parse(dict(decode_headers(entry.headers)).get(PROOF_HEADER))
    run: list[dict[str, Any]] = []
    for row in await store.following(entry.topic, entry.partition, entry.offset, limit):
        headers = decode_headers(row.headers)
        proof = Proof.parse(dict(headers).get(PROOF_HEADER))
        if run and (proof is None or first is None or proof.session != first.session):
            continue
        run.append(
            {
                "topic": row.topic,
                "partition": row.partition,
                "offset": row.offset,
                "timestamp": row.timestamp,
                "key": _b64(row.key),
                "value": _b64(row.value),
                "headers": [(name, _b64(value)) for name, value in headers],
            }
        )
        if proof is None or proof.signature is not None:
            break
    return run


def _b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode()


# --- the transparency log: what outsiders check with standard tools (docs/transparency.md) ------------------

TEXT: dict[int | str, dict[str, Any]] = {200: {"content": {"text/plain": {"schema": {"type": "string"}}}}}


class InclusionProof(BaseModel):
    index: int
    size: int
    hashes: list[str] = Field(description="the RFC 6962 audit path, base64")


class ConsistencyProof(BaseModel):
    old: int
    new: int
    hashes: list[str] = Field(description="the RFC 6962 consistency proof, base64")


@router.get(
    "/v1/audit/checkpoint",
    response_class=PlainTextResponse,
    responses={**TEXT, **problem_responses(401, 404)},
    summary="The latest signed checkpoint of the trail's Merkle tree: a C2SP signed note",
)
async def checkpoint(actor: Authenticated, store: Store) -> PlainTextResponse:
    rows = [row for row in await store.checkpoints() if row.note is not None]
    if not rows:
        raise Problem(404, "no checkpoint has been signed yet")
    return PlainTextResponse(rows[-1].note)


@router.get(
    "/v1/audit/verifier-key",
    response_class=PlainTextResponse,
    responses={**TEXT, **problem_responses(401)},
    summary="The note verifier key of the trail's checkpoints (name+hash+key, as Go's sumdb/note has it)",
)
async def verifier(actor: Authenticated, runtime: Runtime) -> PlainTextResponse:
    origin = runtime.settings.log_origin()
    return PlainTextResponse(verifier_key(origin, runtime.signing_key.public_key) + "\n")


@router.get(
    "/v1/audit/leaves/{index}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, **problem_responses(401, 404, 422)},
    summary="Leaf INDEX of the tree (from 0): its entry's canonical bytes",
)
async def leaf(index: Annotated[int, FastApiPath(ge=0, le=2**62)], actor: Authenticated, store: Store) -> Response:
    found = await store.leaf(index)
    if found is None:
        raise Problem(404, f"the tree has no leaf {index}")
    return Response(found, media_type="application/octet-stream")


async def _reachable(store: AuditStore, size: int, field: str) -> None:
    """A 422 naming ``field`` when the tree is smaller than ``size``."""
    if size > (current := await store.newest()):
        raise Problem(422, f"the tree has {current} leaves, fewer than {size}", field=field)


@router.get(
    "/v1/audit/proofs/inclusion",
    response_model=InclusionProof,
    responses=problem_responses(401, 422),
    summary="The RFC 6962 audit path of leaf INDEX in the tree of SIZE leaves",
)
async def inclusion(
    actor: Authenticated,
    store: Store,
    index: Annotated[int, Query(ge=0, le=2**62)],
    size: Annotated[int, Query(ge=1, le=2**62)],
) -> dict[str, Any]:
    await _reachable(store, size, "size")
    if index >= size:
        raise Problem(422, f"leaf {index} is outside a tree of {size} leaves", field="index")
    return {"index": index, "size": size, "hashes": await _hashes(store, merkle.inclusion_parts(index, size))}


@router.get(
    "/v1/audit/proofs/consistency",
    response_model=ConsistencyProof,
    responses=problem_responses(401, 422),
    summary="The RFC 6962 proof that the tree of NEW leaves extends the one of OLD leaves",
)
async def consistency(
    actor: Authenticated,
    store: Store,
    old: Annotated[int, Query(ge=1, le=2**62)],
    new: Annotated[int, Query(ge=1, le=2**62)],
) -> dict[str, Any]:
    await _reachable(store, new, "new")
    if old > new:
        raise Problem(422, f"an old tree of {old} leaves is larger than the new one of {new}", field="old")
    return {
        "old": old,
        "new": new,
        "hashes": await _hashes(store, merkle.consistency_parts(old, new) if old < new else []),
    }


async def _hashes(store: AuditStore, parts: list[merkle.Part]) -> list[str]:
    """A proof's hashes, base64: each part read from the stored tree, or folded from its nodes."""
    hashes = merkle.resolve(parts, await store.tree_nodes(merkle.needed(parts)))
    return [base64.b64encode(digest).decode() for digest in hashes]
