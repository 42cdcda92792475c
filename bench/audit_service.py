"""Audit: ingest N events from the broker into SQLite with the hash chain, then verify and
export them; against a bare aiokafka consume of the same topic in the same run; resident
memory sampled throughout (the events are written by another process, as in production).

    .venv/bin/python -m bench.audit_service [--events 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench.common import PeakResident, Timed, bench_keys, bench_topic, fill, local_admin, stopwatch
from bench.results import Results, Row, scaled
from bench.tasks_service import bare_read
from services.audit.adapters.store import AuditStore, EntryFilter
from services.audit.application.export import export
from services.audit.application.verification import verify
from services.audit.entrypoints.ingest import Ingestor
from shared.contract.catalog import TaskProgressReported
from shared.contract.codes import Department
from shared.contract.envelope import new_event
from shared.kafka.producer import EventProducer
from shared.process import run, tune_interpreter
from shared.provenance.keys import KeyFolder
from shared.settings import KafkaSettings
from shared.supervision import Health


def write_reports(kafka: KafkaSettings, keys: Path, topic: str, count: int) -> None:
    """Appends ``count`` progress reports to ``topic`` as the tasks service's writer would."""

    async def appended() -> None:
        signing = KeyFolder(keys).signing_key("tasks", create=False)
        async with EventProducer(kafka, client_id="bench-audit", signing_key=signing) as producer:
            reports = (
                new_event(
                    TaskProgressReported(task_id=f"task-{n % 10_000}", percent=n % 101, note="weekly report"),
                    actor="u-jilin",
                    actordept=Department.JILIN,
                )
                for n in range(count)
            )
            await fill(producer, topic, reports)

    run(appended())


async def main(count: int) -> None:
    kafka = local_admin()
    keys = bench_keys()
    keys.signing_key("tasks", create=True)
    trust = keys.trust()
    async with bench_topic(kafka) as topic:
        # The writer is another process, as the tasks service is: its memory is not the audit's.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as writer:
            await asyncio.wrap_future(writer.submit(write_reports, kafka, keys.root, topic, count))
        writers = {topic: {"tasks"}}
        with tempfile.TemporaryDirectory() as folder:
            memory = PeakResident(every=0.1)
            store = AuditStore(f"sqlite+aiosqlite:///{Path(folder) / 'audit.db'}")
            await store.open()
            ingestor = Ingestor(
                kafka, store, 5000, "bench", trust, "bench.local/bench", topics=(topic,), writers=writers
            )
            running = asyncio.create_task(ingestor.run(Health("ingest")))
            with stopwatch(Timed(count)) as ingested:
                while store.head.sequence < count:
                    await asyncio.sleep(0.05)
            ingestor.stop()
            await running
            peaks = {"ingest": memory.peak}
            bare = await bare_read(kafka, topic, count)
            with stopwatch(Timed(count)) as verified:
                result = await verify(store, trust, "bench", "bench.local/bench", kafka, (topic,), writers=writers)
            assert result.ok and result.entries == count, result
            with stopwatch(Timed(count)) as one_walk:
                result = await verify(
                    store,
                    trust,
                    "bench",
                    "bench.local/bench",
                    kafka,
                    (topic,),
                    writers=writers,
                    compare_apart_from=None,
                )
            assert result.ok and result.entries == count, result
            with stopwatch(Timed(count)) as chain_only:
                assert (await verify(store, trust, "bench", "bench.local/bench", None, (topic,), writers=writers)).ok
            peaks["verifications"] = memory.peak
            exported_bytes = 0
            with stopwatch(Timed(count)) as exported:
                async for chunk in export(store, EntryFilter(), "ndjson"):
                    exported_bytes += len(chunk)
            written_here = 0
            with stopwatch(Timed(count)) as exported_here:
                async for chunk in export(store, EntryFilter(), "ndjson", apart_from=None):
                    written_here += len(chunk)
            assert written_here == exported_bytes, (written_here, exported_bytes)
            await store.close()
            peak = memory.taken()
            peaks["exports"] = peak
            database_size = (Path(folder) / "audit.db").stat().st_size
    results = Results("audit_service")
    print(f"\nAudit, {count:,} events (baseline: a bare aiokafka read of the same topic)")
    results.add(
        Row(
            "audit ingest with hash chain into SQLite vs bare consume",
            ingested.rate,
            "ev/s",
            bare.rate,
            target=40_000,
            target_of="value",
        )
    )
    results.add(
        Row(
            "audit full verification (chain, checkpoints, columns, vs log) vs bare consume",
            verified.rate,
            "ev/s",
            bare.rate,
            target=90_000,
            target_of="value",
        )
    )
    results.add(
        Row(
            "audit full verification in one walk (the log compared entry by entry) vs the split",
            one_walk.rate,
            "ev/s",
            verified.rate,
            target=60_000,
            target_of="value",
        )
    )
    results.add(Row("audit verification of chain and checkpoints only", chain_only.rate, "ev/s"))
    results.add(Row("audit export NDJSON vs bare consume", exported.rate, "ev/s", bare.rate, 1.0))
    results.add(Row("audit export NDJSON in one process vs on both cores", exported_here.rate, "ev/s", exported.rate))
    results.add(
        Row(
            "audit peak resident memory",
            peak / 2**20,
            "MiB",
            target=300,
            target_of="value",
            lower_is_better=True,
        )
    )
    results.note(
        "peak resident memory by the end of "
        + ", ".join(f"{step}: {size / 2**20:.1f} MiB" for step, size in peaks.items())
    )
    results.note(f"export wrote {exported_bytes / 1e6:,.0f} MB; the database took {database_size / 2**20:,.0f} MiB")
    results.save()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=scaled(1_000_000, 50_000))
    tune_interpreter()
    asyncio.run(main(parser.parse_args().events))
