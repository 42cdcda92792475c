"""The reader's side of the writer's proof: records of a partition go in as they are read, and
come out in the same order, each with its verdict, once a signature of its writer closes the
chain it is on (or it can be shown that none will).

A record is its writer's when a later record of the same writer session on the same partition
carries a signature that verifies with a key trusted for that topic, within the key's window
(judged by the record's broker-stamped time), and the chain of links leads from that signature
back to it. Anything else is refused: no proof, a proof that cannot be read, an unknown or
retired key, a writer not trusted on the topic, a signature that does not verify, or a record
on no chain a signature closes (inserted by someone else). A record waits while its chain may
still be closed: until its writer's signature arrives, or the reader has read every record the
partition holds so far (a transaction's records and its signature are committed together).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

from shared.contract.topics import ALERTS, AUDIT, COMMANDS, DEADLETTER, EVENTS
from shared.provenance.keys import TrustStore
from shared.provenance.seals import Proof, next_link, proof_of, record_digest, signed_message

TOPIC_WRITERS: Mapping[str, frozenset[str]] = {
    EVENTS: frozenset({"tasks"}),
    ALERTS: frozenset({"notifications"}),
    AUDIT: frozenset({"audit"}),
    DEADLETTER: frozenset({"tasks", "notifications", "audit"}),
    COMMANDS: frozenset({"tasks"}),
}
"""Whose keys may vouch for a record on each topic (a departmental system's command on
``policy.commands`` is signed otherwise: a JWS of the department's key)."""


class LogRecord(Protocol):
    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes | None]]: ...


R = TypeVar("R", bound=LogRecord)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whose record it is, or why it is nobody's."""

    writer: str | None = None
    refusal: str | None = None
    kid: str | None = None
    gap: bool = False
    """The writer's chain does not continue from its record this reader saw last on the
    partition: something of the writer's between them is not on the log."""

    @property
    def ok(self) -> bool:
        return self.refusal is None


def refused(reason: str) -> Verdict:
    return Verdict(refusal=reason)


@dataclass(slots=True)
class _Entry:
    record: LogRecord
    proof: Proof | None
    link: bytes
    verdict: Verdict | None


@dataclass
class _Lane:
    """One partition: its records not yet handed back, and where each writer session's chain
    stood at the last record handed back."""

    entries: deque[_Entry] = field(default_factory=deque)
    chains: dict[str, tuple[int, bytes]] = field(default_factory=dict)


class ProofGate:
    """Checks the writer's proof of every record read from the given topics (one gate per
    reader: it remembers the partitions' chains)."""

    def __init__(self, trust: TrustStore, writers: Mapping[str, Collection[str]] = TOPIC_WRITERS) -> None:
        self._trust = trust
        self._writers = {topic: frozenset(owners) for topic, owners in writers.items()}
        self._lanes: dict[tuple[str, int], _Lane] = {}
        self.checked_signatures = 0

    def admit(
        self, records: Sequence[R], *, complete: bool, topic: str = "", partition: int = -1
    ) -> list[tuple[R, Verdict]]:
        """``records`` of one partition in offset order (or none, to flush): those of them, and of
        the records before them still waiting, that can be judged now, in order. ``complete``:
        the reader has read everything the partition holds so far."""
        if records:
            topic, partition = records[0].topic, records[0].partition
        lane = self._lanes.setdefault((topic, partition), _Lane())
        if records and lane.entries and lane.entries[-1].record.offset >= records[0].offset:
            # Read again from an earlier offset (the reader went back): those waiting come again.
            lane.entries = deque(e for e in lane.entries if e.record.offset < records[0].offset)
        for record in records:
            lane.entries.append(self._inspect(record))
        self._close_chains(lane, topic, partition)
        if complete:
            for entry in lane.entries:
                if entry.verdict is None:
                    entry.verdict = refused("no signature of its writer closes the chain it claims")
        released: list[tuple[R, Verdict]] = []
        while lane.entries and lane.entries[0].verdict is not None:
            entry = lane.entries.popleft()
            assert entry.verdict is not None
            released.append((entry.record, entry.verdict))  # type: ignore[arg-type]  # the records given are R
        return released

    def waiting(self, topic: str, partition: int) -> int | None:
        """The offset of the first record of the partition still waiting for its verdict."""
        lane = self._lanes.get((topic, partition))
        return lane.entries[0].record.offset if lane and lane.entries else None

    def forget(self, topic: str, partition: int) -> None:
        """The reader moved (a seek): what waits here will be read again."""
        self._lanes.pop((topic, partition), None)

    def _inspect(self, record: LogRecord) -> _Entry:
        headers = record.headers if isinstance(record.headers, tuple | list) else tuple(record.headers)
        raw = proof_of(headers)
        if isinstance(raw, str):
            return _Entry(record, None, b"", refused(raw))
        if record.topic not in self._writers:
            return _Entry(record, None, b"", refused(f"nobody is trusted to write {record.topic}"))
        proof = Proof.parse(raw)
        if proof is None:
            return _Entry(record, None, b"", refused("its writer's proof cannot be read"))
        digest = record_digest(record.topic, record.partition, record.key, record.value, headers[:-1])
        return _Entry(record, proof, next_link(proof.previous, digest), None)

    def _close_chains(self, lane: _Lane, topic: str, partition: int) -> None:
        sessions: dict[tuple[str, str], list[_Entry]] = {}
        for entry in lane.entries:
            if entry.verdict is None and entry.proof is not None:
                sessions.setdefault((entry.proof.kid, entry.proof.session), []).append(entry)
        for (kid, session), entries in sessions.items():
            self._close(lane, topic, partition, kid, session, entries)

    def _close(self, lane: _Lane, topic: str, partition: int, kid: str, session: str, entries: list[_Entry]) -> None:
        """Judges the session's waiting records up to its last signed one, walking back from it:
        a record whose link is the one its successor names is on the chain that signature
        closes; a signed record that is not starts a chain of its own if its signature verifies
        (something between is missing: a gap); any other record is refused. Records after the
        last signature wait for the next."""
        last = max((i for i, e in enumerate(entries) if e.proof is not None and e.proof.signature), default=-1)
        required: tuple[int, bytes] | None = None
        first: _Entry | None = None  # the earliest record of the chain being walked
        newest: _Entry | None = None
        theirs = Verdict()
        for entry in reversed(entries[: last + 1]):
            proof = entry.proof
            assert proof is not None
            if required is not None and (proof.n, entry.link) == required:
                entry.verdict, required, first = theirs, (proof.n - 1, proof.previous), entry
                continue
            if proof.signature is None:
                entry.verdict = refused("not on the chain its writer signed: inserted by someone else, or altered")
                continue
            entry.verdict = self._anchor(kid, session, topic, partition, entry, proof)
            if not entry.verdict.ok:
                continue
            if first is not None and first.verdict is not None:  # the later chain does not go on from this one
                first.verdict = replace(first.verdict, gap=True)
            theirs, required, first = entry.verdict, (proof.n - 1, proof.previous), entry
            newest = newest or entry
        if first is None or newest is None:
            return
        assert first.proof is not None and first.verdict is not None and newest.proof is not None
        seen = lane.chains.get(session)
        if seen is not None and (seen[0] + 1, seen[1]) != (first.proof.n, first.proof.previous):
            first.verdict = replace(first.verdict, gap=True)
        lane.chains[session] = (newest.proof.n, newest.link)

    def _anchor(self, kid: str, session: str, topic: str, partition: int, entry: _Entry, proof: Proof) -> Verdict:
        """The verdict a signed record's own signature gives it."""
        assert proof.signature is not None
        self.checked_signatures += 1
        refusal = self._trust.refusal(
            kid,
            signed_message(kid, session, topic, partition, proof.n, entry.link),
            proof.signature,
            owners=self._writers[topic],
            at=entry.record.timestamp / 1000,
        )
        if refusal is not None:
            return refused(refusal)
        trusted = self._trust.get(kid)
        return Verdict(trusted.owner if trusted else None, kid=kid)
