"""What the writer's proof costs, in µs per record (no broker): sealing at the writer, and the
check every reader makes, for the scheme the project uses (a hash chain per writer session and
partition, the last record of each run signed) side by side with the other sound scheme the
issue named (an Ed25519 signature on every record, each checked).

    .venv/bin/python -m bench.provenance [--records 20000]
"""

from __future__ import annotations

import argparse
import time

from bench.common import bench_keys
from bench.decode import records
from bench.results import Results, Row, scaled
from services.audit.domain.chain import LogRecord
from shared.contract.topics import EVENTS
from shared.process import tune_interpreter
from shared.provenance.gate import ProofGate
from shared.provenance.keys import SigningKey, TrustStore
from shared.provenance.seals import PROOF_HEADER, Sealer, record_digest


def sealed(key: SigningKey, count: int, per_transaction: int) -> tuple[list[LogRecord], float]:
    """``count`` records sealed as the event log seals them (the last of each transaction
    signed), and the µs per record that took."""
    made = records(count)
    sealer = Sealer(key)
    out: list[LogRecord] = []
    started = time.perf_counter()
    for n, (k, value, headers) in enumerate(made):
        proof = sealer.seal(EVENTS, 0, k, value, headers, sign=(n + 1) % per_transaction == 0 or n == count - 1)
        out.append(LogRecord(EVENTS, 0, n, int(time.time() * 1000), k, value, (*headers, (PROOF_HEADER, proof))))
    return out, (time.perf_counter() - started) / count * 1e6


def checked(trust: TrustStore, logged: list[LogRecord], batch: int) -> tuple[float, int]:
    """µs per record for a reader admitting ``batch`` records at a time, and the signatures it checked."""
    gate = ProofGate(trust)
    started = time.perf_counter()
    for start in range(0, len(logged), batch):
        verdicts = gate.admit(logged[start : start + batch], complete=True)
        assert all(v.ok for _, v in verdicts)
    return (time.perf_counter() - started) / len(logged) * 1e6, gate.checked_signatures


def signature_per_record(key: SigningKey, logged: list[LogRecord]) -> tuple[float, float]:
    """The other scheme: every record signed over its digest, every signature checked."""
    digests = [record_digest(r.topic, r.partition, r.key, r.value, r.headers) for r in logged]
    started = time.perf_counter()
    signatures = [key.sign(d) for d in digests]
    sign = (time.perf_counter() - started) / len(logged) * 1e6
    public = key.public_key
    started = time.perf_counter()
    for record, signature in zip(logged, signatures, strict=True):
        public.verify(
            signature, record_digest(record.topic, record.partition, record.key, record.value, record.headers)
        )
    return sign, (time.perf_counter() - started) / len(logged) * 1e6


def main(count: int) -> None:
    keys = bench_keys()
    key = keys.signing_key("tasks", create=True)
    trust = keys.trust()
    results = Results("provenance")
    print(f"the writer's proof on {count:,} records of our own log, µs per record:")
    one_each, seal_one = sealed(key, count, 1)
    batched, seal_batched = sealed(key, count, 64)
    started = time.perf_counter()
    for r in one_each:
        record_digest(r.topic, r.partition, r.key, r.value, r.headers)
    digest = (time.perf_counter() - started) / count * 1e6
    results.add(Row("digest of a record (what every check hashes)", digest, "µs"))
    results.add(Row("sealing, a transaction per record (each signed)", seal_one, "µs"))
    results.add(Row("sealing, 64 records a transaction (last signed)", seal_batched, "µs"))
    catch_up, signatures = checked(trust, one_each, 5000)
    results.add(Row("reader catching up (5,000 a fetch), a transaction each", catch_up, "µs"))
    results.note(f"catching up checked {signatures} signatures for {count:,} records")
    live, live_signatures = checked(trust, one_each[:2000], 1)
    results.add(Row("reader live (one record a fetch, its signature checked)", live, "µs"))
    batched_live, _ = checked(trust, batched, 64)
    results.add(Row("reader live, 64-record transactions", batched_live, "µs"))
    sign, verify = signature_per_record(key, one_each)
    results.add(Row("other scheme: a signature on every record, signing", sign, "µs"))
    results.add(Row("other scheme: every record's signature checked", verify, "µs", baseline=catch_up))
    results.note(
        f"a reader catching up pays {catch_up:.1f} µs a record with the chain, {verify:.1f} with a signature "
        f"on every record ({verify / catch_up:.0f}x); live, one record a fetch, both check a signature "
        f"({live:.0f} µs, {live_signatures} checked)"
    )
    results.save()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=scaled(50_000, 10_000))
    tune_interpreter()
    main(parser.parse_args().records)
