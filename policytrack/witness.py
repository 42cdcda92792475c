"""``policytrack witness``: what a second organisation (the National Audit Office, say) runs on a
schedule against the audit service. It keeps the last checkpoint it saw in a file, fetches the
new one, checks its signature with the verifier key it pinned, and checks with a consistency
proof that the new tree extends the old; a smaller tree (a store restored from an older copy)
or another tree of the same or a larger size (a fork) is reported and the run fails."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from shared.transparency.merkle import consistent
from shared.transparency.notes import Checkpoint, NoteError, Verifier, open_note

CHECKED, UNREACHABLE, BROKEN = 0, 2, 3
"""Exit codes: the log grew (or stood still) as it should; it could not be checked; it did not."""


@dataclass(frozen=True)
class Seen:
    """What the witness saw last: the checkpoint, and the key and origin it pinned."""

    verifier_key: str
    note: str
    checkpoint: Checkpoint

    def save(self, path: Path) -> None:
        document = {
            "verifier_key": self.verifier_key,
            "origin": self.checkpoint.origin,
            "size": self.checkpoint.size,
            "root": base64.b64encode(self.checkpoint.root).decode(),
            "note": self.note,
            "checked_at": datetime.now(UTC).isoformat(),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        temporary.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
        temporary.replace(path)

    @classmethod
    def load(cls, path: Path) -> Seen | None:
        if not path.exists():
            return None
        document: dict[str, Any] = orjson.loads(path.read_bytes())
        checkpoint = Checkpoint(document["origin"], int(document["size"]), base64.b64decode(document["root"]))
        return cls(document["verifier_key"], document["note"], checkpoint)


@dataclass(frozen=True)
class Outcome:
    code: int
    message: str
    seen: Seen | None = None


def witness(client: httpx.Client, state: Path, verifier_key: str | None) -> Outcome:
    """One round: fetch, check, and (when it holds) remember the new checkpoint."""
    before = Seen.load(state)
    pinned = before.verifier_key if before else verifier_key
    try:
        if pinned is None:
            pinned = _text(client, "/v1/audit/verifier-key").strip()
        verifier = Verifier.parse(pinned)
        note = _text(client, "/v1/audit/checkpoint")
        body, _ = open_note(note, [verifier])
        now = Checkpoint.parse(body)
    except NoteError as error:
        return Outcome(BROKEN, f"the checkpoint does not hold: {error}")
    except httpx.HTTPError as error:
        return Outcome(UNREACHABLE, f"could not fetch the checkpoint: {error}")
    if before is not None:
        problem = _against(client, before.checkpoint, now)
        if problem is not None:
            return problem
    seen = Seen(pinned, note, now)
    seen.save(state)
    grown = "" if before is None else f", consistent with the {before.checkpoint.size:,} it had before"
    return Outcome(CHECKED, f"{now.origin}: {now.size:,} entries{grown}", seen)


def _against(client: httpx.Client, old: Checkpoint, new: Checkpoint) -> Outcome | None:
    """Why ``new`` does not extend ``old``, if it does not."""
    if new.origin != old.origin:
        return Outcome(BROKEN, f"the log's origin changed from {old.origin!r} to {new.origin!r}")
    if new.size < old.size:
        return Outcome(
            BROKEN,
            f"ROLLBACK: the log now has {new.size:,} entries, fewer than the {old.size:,} it signed before "
            "(a store restored from an older copy, or truncated)",
        )
    if new.size == old.size:
        if new.root != old.root:
            return Outcome(BROKEN, f"FORK: two different trees of {new.size:,} entries are both signed")
        return None
    try:
        answer = client.get("/v1/audit/proofs/consistency", params={"old": old.size, "new": new.size})
        answer.raise_for_status()
        proof = [base64.b64decode(h) for h in answer.json()["hashes"]]
    except (httpx.HTTPError, KeyError, ValueError) as error:
        return Outcome(UNREACHABLE, f"could not fetch the consistency proof: {error}")
    if not consistent(old.size, new.size, old.root, new.root, proof):
        return Outcome(
            BROKEN, f"FORK: the tree of {new.size:,} entries does not extend the one of {old.size:,} seen before"
        )
    return None


def _text(client: httpx.Client, path: str) -> str:
    answer = client.get(path)
    answer.raise_for_status()
    return answer.text
