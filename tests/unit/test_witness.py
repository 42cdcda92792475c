"""``policytrack witness`` against a log it reaches over HTTP (served here in process, from real
trees and real signed notes): it accepts a log that grows, and catches a rollback, a fork and a
checkpoint signed by another key."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from policytrack.witness import BROKEN, CHECKED, witness
from shared.provenance.keys import KeyFolder, SigningKey
from shared.transparency.merkle import consistency_parts, needed, resolve, tree_of
from shared.transparency.notes import checkpoint_body, sign_note, verifier_key

ORIGIN = "policytrack.test/audit-chain"
LEAVES = [f"entry {n}".encode() for n in range(64)]


class Log:
    """An audit service's transparency routes over a list of leaves."""

    def __init__(self, key: SigningKey, leaves: list[bytes]) -> None:
        self.key, self.leaves = key, leaves

    def handle(self, request: httpx.Request) -> httpx.Response:
        frontier, nodes = tree_of(self.leaves)
        if request.url.path == "/v1/audit/verifier-key":
            return httpx.Response(200, text=verifier_key(ORIGIN, self.key.public_key))
        if request.url.path == "/v1/audit/checkpoint":
            body = checkpoint_body(ORIGIN, len(self.leaves), frontier.root())
            return httpx.Response(200, text=sign_note(body, ORIGIN, self.key))
        if request.url.path == "/v1/audit/proofs/consistency":
            old, new = int(request.url.params["old"]), int(request.url.params["new"])
            if new > len(self.leaves):
                return httpx.Response(422, json={"detail": "too large"})
            parts = consistency_parts(old, new)
            hashes = resolve(parts, {node: nodes[node] for node in needed(parts)})
            return httpx.Response(
                200, json={"old": old, "new": new, "hashes": [base64.b64encode(h).decode() for h in hashes]}
            )
        return httpx.Response(404)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handle), base_url="http://audit.test")


@pytest.fixture
def key(tmp_path: Path) -> SigningKey:
    return KeyFolder(tmp_path / "keys").signing_key("audit", create=True)


def test_a_growing_log_is_checked_each_round(tmp_path: Path, key: SigningKey) -> None:
    state = tmp_path / "witness.json"
    log = Log(key, LEAVES[:10])
    first = witness(log.client(), state, None)
    assert first.code == CHECKED and first.seen is not None and first.seen.checkpoint.size == 10
    log.leaves = LEAVES[:37]
    assert witness(log.client(), state, None).code == CHECKED
    assert witness(log.client(), state, None).code == CHECKED, "a log that stood still is fine"


def test_a_store_restored_from_an_older_copy_is_a_rollback(tmp_path: Path, key: SigningKey) -> None:
    state = tmp_path / "witness.json"
    log = Log(key, LEAVES[:40])
    assert witness(log.client(), state, None).code == CHECKED
    log.leaves = LEAVES[:25]
    outcome = witness(log.client(), state, None)
    assert outcome.code == BROKEN and "ROLLBACK" in outcome.message
    assert '"size": 40' in state.read_text(), "the evidence is kept"


def test_a_forked_tree_is_caught_at_the_same_size_and_beyond(tmp_path: Path, key: SigningKey) -> None:
    state = tmp_path / "witness.json"
    log = Log(key, LEAVES[:30])
    assert witness(log.client(), state, None).code == CHECKED
    forked = [*LEAVES[:12], b"rewritten", *LEAVES[13:30]]
    same_size = witness(Log(key, forked).client(), state, None)
    assert same_size.code == BROKEN and "FORK" in same_size.message
    longer = witness(Log(key, [*forked, *LEAVES[30:50]]).client(), state, None)
    assert longer.code == BROKEN and "does not extend" in longer.message


def test_a_checkpoint_signed_by_another_key_is_refused(tmp_path: Path, key: SigningKey) -> None:
    state = tmp_path / "witness.json"
    assert witness(Log(key, LEAVES[:8]).client(), state, None).code == CHECKED
    impostor = KeyFolder(tmp_path / "other").signing_key("audit", create=True)
    outcome = witness(Log(impostor, LEAVES[:9]).client(), state, None)
    assert outcome.code == BROKEN and "does not hold" in outcome.message


def test_a_verifier_key_given_out_of_band_is_the_one_pinned(tmp_path: Path, key: SigningKey) -> None:
    impostor = KeyFolder(tmp_path / "other").signing_key("audit", create=True)
    given = verifier_key(ORIGIN, key.public_key)
    outcome = witness(Log(impostor, LEAVES[:8]).client(), tmp_path / "witness.json", given)
    assert outcome.code == BROKEN, "the service's own key is not trusted over the pinned one"
