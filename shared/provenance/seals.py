"""The writer's proof every record carries (the ``writer-proof`` header): a per-partition hash
chain of the writer's records, whose heads the writer signs with its Ed25519 key.

Each writer process starts a session (a random id) and keeps, per topic and partition, a chain:
``link(n) = SHA-256(link(n-1) || digest(record n))``, where the digest covers the record's
topic, partition, key, value and every header but the proof itself, which is always the last. Every record carries its
key id, session, position ``n`` in the chain and ``link(n-1)``; the writer signs ``link(n)`` at
least on the last record it writes to a partition in one go (a transaction, or every record
without one). A signature vouches for every record of the chain before it, so a reader checks
one signature per run of records, and a record inserted by anyone else, however well-formed,
is on no chain a signature closes. ``docs/provenance.md`` writes the bytes down.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence

import msgspec

from shared.provenance.keys import SigningKey

PROOF_HEADER = "writer-proof"
VERSION = "1"
_DIGEST_TAG = b"policytrack.record.v1\x00"
_SIGNED_TAG = b"policytrack.seal.v1\n"
_MSGPACK = msgspec.msgpack.Encoder()

Headers = Iterable[tuple[str, bytes | None]]


def record_digest(
    topic: str, partition: int, key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes | None]]
) -> bytes:
    """SHA-256 of the record as the log holds it, without its proof (``headers`` is every header
    before it): the tag, then MessagePack, each value in its shortest form, of
    ``[topic, partition, key, value, [[name, value], ...]]``."""
    return hashlib.sha256(_DIGEST_TAG + _MSGPACK.encode((topic, partition, key, value, headers))).digest()


def next_link(previous: bytes, digest: bytes) -> bytes:
    return hashlib.sha256(previous + digest).digest()


def genesis(session: str, topic: str, partition: int) -> bytes:
    return hashlib.sha256(f"policytrack.chain.v1\n{session}\n{topic}\n{partition}".encode()).digest()


def signed_message(kid: str, session: str, topic: str, partition: int, n: int, link: bytes) -> bytes:
    """What a signature over ``link`` covers: the chain it closes, and where."""
    return _SIGNED_TAG + f"{kid}\n{session}\n{topic}\n{partition}\n{n}\n{link.hex()}".encode()


class Proof(msgspec.Struct, frozen=True):
    """A record's ``writer-proof`` header, read: ``1.<kid>.<session>.<n>.<previous>[.<signature>]``,
    the link and the signature in hex. A Struct: one is read for every record a reader takes,
    and its constructor runs in C (a frozen dataclass's sets each field through Python)."""

    kid: str
    session: str
    n: int
    previous: bytes
    signature: bytes | None

    def encode(self) -> bytes:
        fields = [VERSION, self.kid, self.session, str(self.n), self.previous.hex()]
        if self.signature is not None:
            fields.append(self.signature.hex())
        return ".".join(fields).encode()

    @classmethod
    def parse(cls, raw: bytes | None) -> Proof | None:
        """The proof, or None when the header is absent or not one this code writes."""
        if raw is None:
            return None
        fields = raw.split(b".")
        if len(fields) not in (5, 6) or fields[0] != b"1" or len(fields[4]) != 64 or len(raw) > 400:
            return None
        try:
            n = int(fields[3])
            previous = bytes.fromhex(fields[4].decode("ascii"))
            signature = bytes.fromhex(fields[5].decode("ascii")) if len(fields) == 6 else None
            kid, session = fields[1].decode("ascii"), fields[2].decode("ascii")
        except (UnicodeDecodeError, ValueError):
            return None
        if n < 1 or not kid or not session or (signature is not None and len(signature) != 64):
            return None
        return cls(kid, session, n, previous, signature)


def proof_of(headers: Sequence[tuple[str, bytes | None]]) -> bytes | str:
    """The value of the record's proof header, or why it has none: a writer appends exactly one,
    last, and its digest covers every header before it (another "proof" among them included)."""
    if not headers or headers[-1][0] != PROOF_HEADER:
        return "carries no writer's proof (it is the last header of every record a writer seals)"
    raw = headers[-1][1]
    return raw if raw is not None else "its writer's proof is empty"


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
        n, previous = self._links.get((topic, partition)) or (0, genesis(self.session, topic, partition))
        n += 1
        link = next_link(previous, record_digest(topic, partition, key, value, tuple(headers)))
        self._links[(topic, partition)] = (n, link)
        signature = (
            self.key.sign(signed_message(self.key.key_id, self.session, topic, partition, n, link)) if sign else None
        )
        return Proof(self.key.key_id, self.session, n, previous, signature).encode()
