"""Idempotency-Key as draft-ietf-httpapi-idempotency-key-header has it, as every service reads
it: the key's form, and the request's fingerprint that the same key must come back with."""

from __future__ import annotations

import hashlib
import re

import orjson
from fastapi import Request

from shared.http.problems import Problem

MAX_KEY = 255
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def fingerprint(method: str, path: str, body: object) -> str:
    """SHA-256 of the request: the same method, path and JSON body (whatever its spacing or
    key order) give the same fingerprint."""
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(f"{method.upper()} {path}\n".encode() + canonical).hexdigest()


async def idempotency_key(request: Request) -> tuple[str, str] | None:
    """The request's Idempotency-Key and fingerprint, if it has a key; a malformed key is a 422."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not _KEY.fullmatch(key):
        raise Problem(422, f"Idempotency-Key must be 1 to {MAX_KEY} visible ASCII characters", field="Idempotency-Key")
    raw = await request.body()
    body = orjson.loads(raw) if raw.strip() else None
    return key, fingerprint(request.method, request.url.path, body)
