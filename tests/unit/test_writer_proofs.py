"""The writer's proof, written by a Sealer and judged by a ProofGate, with plain records: what
a writer seals is its own, and nothing anyone else puts among it is."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from shared.contract.topics import ALERTS, EVENTS
from shared.provenance.gate import ProofGate, Verdict
from shared.provenance.keys import KeyFolder, SigningKey
from shared.provenance.seals import PROOF_HEADER, Proof, Sealer, next_link, record_digest


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


class Log:
    """A partition as the broker would hold it: records appended at the next offset, stamped now."""

    def __init__(self, topic: str = EVENTS, partition: int = 0) -> None:
        self.topic, self.partition, self.records = topic, partition, list[Record]()

    def append(self, value: bytes, *, sealer: Sealer | None, sign: bool = True, proof: bytes | None = None) -> Record:
        headers: tuple[tuple[str, bytes | None], ...] = (("ce_id", f"e-{len(self.records)}".encode()),)
        if sealer is not None:
            proof = sealer.seal(self.topic, self.partition, b"task-1", value, headers, sign=sign)
        if proof is not None:
            headers = (*headers, (PROOF_HEADER, proof))
        record = Record(
            self.topic, self.partition, len(self.records), int(time.time() * 1000), b"task-1", value, headers
        )
        self.records.append(record)
        return record

    def transaction(self, sealer: Sealer, *values: bytes) -> list[Record]:
        """A writer's transaction: only its last record on the partition is signed."""
        return [self.append(v, sealer=sealer, sign=i == len(values) - 1) for i, v in enumerate(values)]


@pytest.fixture
def keys(tmp_path: Path) -> KeyFolder:
    return KeyFolder(tmp_path / "keys")


@pytest.fixture
def tasks_key(keys: KeyFolder) -> SigningKey:
    return keys.signing_key("tasks", create=True)


def judge(gate: ProofGate, records: list[Record], *, complete: bool = True) -> list[Verdict]:
    return [verdict for _, verdict in gate.admit(records, complete=complete)]


def test_a_writers_transactions_are_its_own_with_one_signature_each_run(keys: KeyFolder, tasks_key: SigningKey) -> None:
    log, sealer = Log(), Sealer(tasks_key)
    log.transaction(sealer, b"a", b"b", b"c")
    log.transaction(sealer, b"d", b"e")
    gate = ProofGate(keys.trust())
    verdicts = judge(gate, log.records)
    assert [v.writer for v in verdicts] == ["tasks"] * 5
    assert all(v.ok and not v.gap for v in verdicts)
    assert gate.checked_signatures == 1, "the last signature vouches for the whole run"


def test_records_wait_for_the_signature_that_closes_their_chain(keys: KeyFolder, tasks_key: SigningKey) -> None:
    log, sealer = Log(), Sealer(tasks_key)
    first, second, third = log.transaction(sealer, b"a", b"b", b"c")
    gate = ProofGate(keys.trust())
    assert gate.admit([first, second], complete=False) == []
    assert gate.waiting(EVENTS, 0) == first.offset
    assert [r.offset for r, v in gate.admit([third], complete=False) if v.ok] == [0, 1, 2]


def test_a_well_formed_record_inserted_among_a_writers_records_is_refused(
    keys: KeyFolder, tasks_key: SigningKey
) -> None:
    log, sealer = Log(), Sealer(tasks_key)
    log.transaction(sealer, b"a")
    genuine = log.records[0]
    claimed = Proof.parse(dict(genuine.headers)[PROOF_HEADER])
    assert claimed is not None
    # The outsider copies the writer's proof fields and links its record to the chain's head.
    head = next_link(claimed.previous, record_digest(EVENTS, 0, genuine.key, genuine.value, genuine.headers[:1]))
    forged = Proof(claimed.kid, claimed.session, claimed.n + 1, head, None).encode()
    log.append(b'{"percent": 99}', sealer=None, proof=forged)
    log.transaction(sealer, b"b", b"c")
    verdicts = judge(ProofGate(keys.trust()), log.records)
    assert [v.ok for v in verdicts] == [True, False, True, True]
    assert "not on the chain" in (verdicts[1].refusal or "")


@pytest.mark.parametrize(
    "proof",
    [None, b"garbage", b"1.abc.def.1.AAAA"],
    ids=["no proof", "unreadable", "wrong length"],
)
def test_a_record_without_a_readable_proof_is_nobodys(keys: KeyFolder, proof: bytes | None) -> None:
    log = Log()
    log.append(b"x", sealer=None, proof=proof)
    (verdict,) = judge(ProofGate(keys.trust()), log.records)
    assert not verdict.ok


def test_a_key_not_trusted_for_the_topic_or_not_trusted_at_all_vouches_for_nothing(
    keys: KeyFolder, tmp_path: Path
) -> None:
    notifications = keys.signing_key("notifications", create=True)
    stranger = KeyFolder(tmp_path / "elsewhere").signing_key("tasks", create=True)
    log = Log()
    log.transaction(Sealer(notifications), b"a")
    log.transaction(Sealer(stranger), b"b")
    verdicts = judge(ProofGate(keys.trust()), log.records)
    assert "who may not write this" in (verdicts[0].refusal or "")
    assert "unknown key" in (verdicts[1].refusal or "")
    alerts = Log(ALERTS)
    alerts.transaction(Sealer(notifications), b"c")
    assert judge(ProofGate(keys.trust()), alerts.records)[0].writer == "notifications"


def test_an_altered_record_and_an_unclosed_chain_are_refused(keys: KeyFolder, tasks_key: SigningKey) -> None:
    log, sealer = Log(), Sealer(tasks_key)
    log.transaction(sealer, b"a", b"b")
    log.records[1] = replace(log.records[1], value=b"B")
    verdicts = judge(ProofGate(keys.trust()), log.records)
    assert not any(v.ok for v in verdicts), "the signature covers the original bytes"

    unclosed = Log()
    unclosed.append(b"a", sealer=Sealer(tasks_key), sign=False)
    gate = ProofGate(keys.trust())
    assert gate.admit(unclosed.records, complete=False) == [], "its signature may still come"
    [(_, verdict)] = gate.admit([], complete=True, topic=EVENTS, partition=0)
    assert "no signature" in (verdict.refusal or "")


def test_a_retired_key_vouches_only_for_what_it_signed_before(keys: KeyFolder, tasks_key: SigningKey) -> None:
    log, sealer = Log(), Sealer(tasks_key)
    log.transaction(sealer, b"before")
    keys.retire("tasks", tasks_key.key_id, at=time.time() - 0.001)
    later = log.transaction(sealer, b"after")[0]
    early = replace(log.records[0], timestamp=int((time.time() - 60) * 1000))
    gate = ProofGate(keys.trust())
    assert judge(gate, [early])[0].ok
    assert "outside the window" in (judge(gate, [later])[0].refusal or "")


def test_a_missing_run_of_the_writers_records_is_reported_as_a_gap(keys: KeyFolder, tasks_key: SigningKey) -> None:
    log, sealer = Log(), Sealer(tasks_key)
    log.transaction(sealer, b"a")
    log.transaction(sealer, b"b")
    log.transaction(sealer, b"c")
    del log.records[1]
    verdicts = judge(ProofGate(keys.trust()), log.records)
    assert [v.ok for v in verdicts] == [True, True]
    assert [v.gap for v in verdicts] == [False, True]
