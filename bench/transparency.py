"""The Merkle tree of the audit trail: what keeping it costs at ingest (µs per entry) and what
serving a proof costs with a million entries in the store, against the same store without the
tree and a plain read of one entry, measured in the same run. No broker: the records are made
here and chained as the ingestor chains them.

    .venv/bin/python -m bench.transparency [--entries 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.results import Results, Row, scaled
from services.audit.adapters.chaining import ChainedBatch, chained
from services.audit.adapters.store import AuditStore
from services.audit.domain.chain import LogRecord, canonical, headers_json
from shared.contract.catalog import TaskProgressReported
from shared.contract.codec import encode
from shared.contract.codes import Department
from shared.contract.envelope import new_event
from shared.process import tune_interpreter
from shared.transparency import merkle

BATCH = 5000
PROOFS = 2000


def records(count: int) -> Iterator[list[LogRecord]]:
    """Batches of records as the ingestor receives them: real events, three partitions."""
    batch: list[LogRecord] = []
    for n in range(count):
        event = new_event(
            TaskProgressReported(task_id=f"task-{n % 10_000}", percent=n % 101, note="weekly report"),
            actor="u-jilin",
            actordept=Department.JILIN,
        )
        encoded = encode(event)
        batch.append(
            LogRecord(encoded.topic, n % 3, n // 3, 1_700_000_000_000 + n, encoded.key, encoded.value, encoded.headers)
        )
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


async def ingest(store: AuditStore, batches: list[list[LogRecord]], *, tree: bool) -> tuple[float, float]:
    """Chains and writes every batch; returns (seconds chaining, seconds writing)."""
    chaining = writing = 0.0
    for batch in batches:
        started = time.perf_counter()
        done: ChainedBatch = chained(batch, store.head)
        if not tree:
            done = dataclasses.replace(done, nodes=[])
        chaining += time.perf_counter() - started
        started = time.perf_counter()
        await store.write(done)
        writing += time.perf_counter() - started
    return chaining, writing


def tree_cpu(batches: list[list[LogRecord]]) -> float:
    """Seconds the tree's hashing alone takes over the same leaves (the rest of chaining is the
    hash chain the trail had before)."""
    leaves = [canonical(record, headers_json(record.headers)) for batch in batches for record in batch]
    frontier, made = merkle.Frontier(), list[tuple[int, int, bytes]]()
    started = time.perf_counter()
    for leaf in leaves:
        frontier = frontier.append(leaf, made)
    return time.perf_counter() - started


async def serve(store: AuditStore, size: int, proofs: int) -> dict[str, float]:
    """Seconds per proof as the routes build them (parts, nodes read, resolved), and per plain
    read of one leaf, over random indexes."""
    rng = random.Random(7)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    for _ in range(proofs):
        await store.leaf(rng.randrange(size))
    timings["leaf"] = (time.perf_counter() - started) / proofs
    started = time.perf_counter()
    for _ in range(proofs):
        index = rng.randrange(size)
        parts = merkle.inclusion_parts(index, size)
        hashes = merkle.resolve(parts, await store.tree_nodes(merkle.needed(parts)))
        assert len(hashes) == len(parts)
    timings["inclusion"] = (time.perf_counter() - started) / proofs
    started = time.perf_counter()
    for _ in range(proofs):
        old = rng.randrange(1, size)
        parts = merkle.consistency_parts(old, size)
        merkle.resolve(parts, await store.tree_nodes(merkle.needed(parts)))
    timings["consistency"] = (time.perf_counter() - started) / proofs
    return timings


async def main(count: int) -> None:
    batches = list(records(count))
    with tempfile.TemporaryDirectory() as folder:
        plain = AuditStore(f"sqlite+aiosqlite:///{Path(folder) / 'plain.db'}")
        kept = AuditStore(f"sqlite+aiosqlite:///{Path(folder) / 'tree.db'}")
        await plain.open()
        await kept.open()
        plain_chain, plain_write = await ingest(plain, batches, tree=False)
        tree_chain, tree_write = await ingest(kept, batches, tree=True)
        hashing = tree_cpu(batches)
        timings = await serve(kept, count, scaled(PROOFS, 500))
        root = (await kept.root_at(count)) or b""
        assert root == kept.head.tree.root(), "the stored tree and the ingested frontier disagree"
        sizes = {name: (Path(folder) / f"{name}.db").stat().st_size for name in ("plain", "tree")}
        await plain.close()
        await kept.close()
    per_entry = 1e6 / count
    # chained() always grows the frontier, so the ingest without the tree is the plain store's
    # chaining less the tree's hashing, measured alone over the same leaves.
    without_tree = plain_chain - hashing + plain_write
    results = Results("transparency")
    print(f"\nTransparency, {count:,} entries (baseline: the same ingest without the tree)")
    results.add(
        Row(
            "ingest with tree (chain + write), µs per entry",
            (tree_chain + tree_write) * per_entry,
            "µs",
            without_tree * per_entry,
            lower_is_better=True,
        )
    )
    results.add(Row("  of which the tree's hashing, µs per entry", hashing * per_entry, "µs", lower_is_better=True))
    results.add(
        Row(
            "  of which writing the tree's nodes, µs per entry",
            max(tree_write - plain_write, 0.0) * per_entry,
            "µs",
            lower_is_better=True,
        )
    )
    for proof in ("inclusion", "consistency"):
        results.add(
            Row(
                f"{proof} proof at this size vs reading one leaf",
                timings[proof] * 1e6,
                "µs",
                timings["leaf"] * 1e6,
                lower_is_better=True,
            )
        )
    results.note(
        f"the store took {sizes['tree'] / 2**20:,.0f} MiB with the tree, {sizes['plain'] / 2**20:,.0f} MiB without"
    )
    results.save()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=scaled(1_000_000, 50_000))
    tune_interpreter()
    asyncio.run(main(parser.parse_args().entries))
