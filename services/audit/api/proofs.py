"""What proves the trail: full verification, and the signed checkpoints with the keys that verify them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from services.audit import verification
from services.audit.api.dependencies import Runtime, everything
from shared.http.problems import problem_responses
from shared.http.service import Authenticated

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


class CheckpointRow(BaseModel):
    sequence: int
    head_hash: str
    signed_at: str
    key_id: str
    signature: str
    published: bool


class CheckpointsAnswer(BaseModel):
    chain: str
    key_id: str
    public_key: str
    keys: list[dict[str, str]]
    checkpoints: list[CheckpointRow]


@router.get(
    "/v1/audit/verify",
    response_model=VerificationAnswer,
    responses=problem_responses(401, 403, 422),
    summary="Recompute the chain, check checkpoints, compare every entry with the Kafka log",
)
async def verify(actor: Authenticated, runtime: Runtime, against_log: bool = True) -> dict[str, Any]:
    everything(actor)
    result = await verification.verify(
        runtime.store, runtime.trusted_keys, runtime.settings.chain_id, runtime.settings.kafka if against_log else None
    )
    return result.as_dict()


@router.get(
    "/v1/audit/checkpoints",
    response_model=CheckpointsAnswer,
    responses=problem_responses(401),
    summary="Signed checkpoints and the keys that verify them",
)
async def checkpoints(actor: Authenticated, runtime: Runtime) -> dict[str, Any]:
    return await runtime.checkpointer.published(runtime.trusted_keys)
