"""Which checkpoint records count as evidence of what the store held: only those the audit
service wrote (their writer's proof holds) whose note is signed, under this log's origin, by a
trusted audit key within its window (judged by the record's broker-stamped time). Anything else
is checked before it is believed, and never believed: it is reported, and ingestion goes on."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from pydantic import ValidationError

from shared.contract.catalog import TreeCheckpoint
from shared.contract.codec import HEADER_PREFIX
from shared.provenance.gate import Verdict
from shared.provenance.keys import TrustStore
from shared.transparency.notes import Checkpoint, NoteError, Verifier, key_hash, open_note

OWNER = "audit"
CHECKPOINT_TYPE = TreeCheckpoint.event_type.encode()


@dataclass(frozen=True)
class Evidence:
    """A checkpoint that counts: its size, its tree's root and the chain's head at that size."""

    checkpoint: TreeCheckpoint
    size: int
    root: bytes


@dataclass(frozen=True)
class NotEvidence:
    """A record that claims to be a checkpoint of this chain, and why it is not believed."""

    reason: str


def note_refusal(note: str, *, origin: str, trust: TrustStore, at: float | None) -> Checkpoint | str:
    """The checkpoint the note carries, or why it is not this log's, signed by a trusted key."""
    keys = trust.of(OWNER)
    valid = [Verifier(origin, key_hash(origin, key.public), key.public) for key in keys if key.valid_at(at)]
    try:
        body, _ = open_note(note, valid)
    except NoteError as error:
        if any(f" {origin} " in line for line in note.splitlines()) and len(valid) < len(keys):
            return f"{error} (a key that signed it may have been retired before it was written)"
        return str(error)
    try:
        checkpoint = Checkpoint.parse(body)
    except NoteError as error:
        return str(error)
    if checkpoint.origin != origin:
        return f"a checkpoint of another log ({checkpoint.origin!r})"
    return checkpoint


def judge(
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes | None]] | tuple[tuple[str, bytes | None], ...],
    verdict: Verdict,
    *,
    chain_id: str,
    origin: str,
    trust: TrustStore,
    at: float,
) -> Evidence | NotEvidence | None:
    """A record of the checkpoint partition: evidence, not evidence (and why), or None when it
    does not claim to be a checkpoint of this chain."""
    if dict(headers).get(HEADER_PREFIX + "type") != CHECKPOINT_TYPE or key != chain_id.encode():
        return None
    if not verdict.ok:
        return NotEvidence(f"its writer's proof fails: {verdict.refusal}")
    try:
        claimed = TreeCheckpoint.model_validate_json(value or b"")
    except ValidationError as error:
        return NotEvidence(f"not a checkpoint: {error.errors()[0]['msg']}")
    checked = note_refusal(claimed.note, origin=origin, trust=trust, at=at)
    if isinstance(checked, str):
        return NotEvidence(checked)
    if (checked.size, base64.b64encode(checked.root).decode()) != (claimed.size, claimed.root_hash):
        return NotEvidence("the event's size or root is not its note's")
    return Evidence(claimed, checked.size, checked.root)
