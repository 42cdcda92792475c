"""The writer's proof every record carries (the ``writer-proof`` header): a per-partition hash
chain of the writer's records, whose heads the writer signs with its Ed25519 key.

Each writer process starts a session (a random id) and keeps, per topic and partition, a chain:
``link(n) = SHA-256(link(n-1) || digest(record n))``, where the digest covers the record's
topic, partition, key, value and every header but the proof itself. Every record carries its
key id, session, position ``n`` in the chain and ``link(n-1)``; the writer signs ``link(n)`` at
least on the last record it writes to a partition in one go (a transaction, or every record
without one). A signature vouches for every record of the chain before it, so a reader checks
one signature per run of records, and a record inserted by anyone else, however well-formed,
is on no chain a signature closes. ``docs/provenance.md`` writes the bytes down.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from shared.provenance.keys import SigningKey, b64url, from_b64url

PROOF_HEADER = "writer-proof"
VERSION = "1"
_DIGEST_TAG = b"policytrack.record.v1\x00"
_SIGNED_TAG = b"policytrack.seal.v1\n"
_U32 = struct.Struct(">I").pack
_NONE = b"\xff\xff\xff\xff"

Headers = Iterable[tuple[str, bytes | None]]


def _field(raw: bytes | None) -> bytes:
    return _NONE if raw is None else _U32(len(raw)) + raw


def record_digest(topic: str, partition: int, key: bytes | None, value: bytes | None, headers: Headers) -> bytes:
    """SHA-256 of the record as the log holds it, but for its proof header."""
    kept = [(name, raw) for name, raw in headers if name != PROOF_HEADER]
    parts = [_DIGEST_TAG, _field(topic.encode()), _U32(partition), _field(key), _field(value), _U32(len(kept))]
    for name, raw in kept:
        parts.append(_field(name.encode()))
        parts.append(_field(raw))
    return hashlib.sha256(b"".join(parts)).digest()


def next_link(previous: bytes, digest: bytes) -> bytes:
    return hashlib.sha256(previous + digest).digest()


def genesis(session: str, topic: str, partition: int) -> bytes:
    return hashlib.sha256(f"policytrack.chain.v1\n{session}\n{topic}\n{partition}".encode()).digest()


def signed_message(kid: str, session: str, topic: str, partition: int, n: int, link: bytes) -> bytes:
    """What a signature over ``link`` covers: the chain it closes, and where."""
    return _SIGNED_TAG + f"{kid}\n{session}\n{topic}\n{partition}\n{n}\n{link.hex()}".encode()


@dataclass(frozen=True, slots=True)
class Proof:
    """A record's ``writer-proof`` header, read."""

    kid: str
    session: str
    n: int
    previous: bytes
    signature: bytes | None

    def encode(self) -> bytes:
        fields = [VERSION, self.kid, self.session, str(self.n), b64url(self.previous)]
        if self.signature is not None:
            fields.append(b64url(self.signature))
        return ".".join(fields).encode()

    @classmethod
    def parse(cls, raw: bytes | None) -> Proof | None:
        """The proof, or None when the header is not one this code writes."""
        if raw is None or len(raw) > 512:
            return None
        try:
            fields = raw.decode("ascii").split(".")
            if fields[0] != VERSION or len(fields) not in (5, 6):
                return None
            n = int(fields[3])
            previous = from_b64url(fields[4])
            signature = from_b64url(fields[5]) if len(fields) == 6 else None
        except (UnicodeDecodeError, ValueError):
            return None
        if n < 1 or len(previous) != 32 or (signature is not None and len(signature) != 64):
            return None
        if not fields[1] or not fields[2] or len(fields[1]) > 64 or len(fields[2]) > 64:
            return None
        return cls(fields[1], fields[2], n, previous, signature)


def proof_of(headers: Headers) -> tuple[bytes | None, int]:
    """The value of the record's proof header and how many it has (a proof given twice is none)."""
    found = [raw for name, raw in headers if name == PROOF_HEADER]
    return (found[0] if found else None), len(found)


class Sealer:
    """The writer's side: seals each record it is given, in the order the log will hold them.
    One per producer: a producer that failed is replaced, and its successor starts a new session
    (what the failed one sealed but the log did not take is then on no chain that goes on)."""

    def __init__(self, key: SigningKey) -> None:
        self.key = key
        self.session = os.urandom(8).hex()
        self._links: dict[tuple[str, int], tuple[int, bytes]] = {}

    def seal(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        *,
        sign: bool = True,
    ) -> bytes:
        """The proof header's value for a record about to be appended at ``topic/partition``."""
        n, previous = self._links.get((topic, partition), (0, genesis(self.session, topic, partition)))
        n += 1
        link = next_link(previous, record_digest(topic, partition, key, value, headers))
        self._links[(topic, partition)] = (n, link)
        signature = (
            self.key.sign(signed_message(self.key.key_id, self.session, topic, partition, n, link)) if sign else None
        )
        return Proof(self.key.key_id, self.session, n, previous, signature).encode()
