"""Where a transaction's time goes, on one broker and on three (issue 31, item 7).

A transactional writer appends one signed event per transaction, one transaction after another,
as the tasks service's writer does for one command at a time. The same steps are timed on both
brokers, in the same run:
- adding the partition to the transaction, with the retries the broker asks for while the
  previous transaction's markers are still being written;
- the produce (acks=all);
- the commit (EndTxn).

The baseline is one broker. With 16 clients each waiting for its answer, commands per second
cannot exceed 16 divided by one command's time; this says where that time goes.

    .venv/bin/python -m bench.transactions [--transactions 300]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiokafka.producer import sender as aiokafka_sender

from bench.common import bench_keys, scratch_broker
from bench.results import Results, Row, scaled
from shared.contract.catalog import TaskProgressReported
from shared.contract.codes import Department
from shared.contract.envelope import new_event
from shared.kafka.producer import EventProducer

PORTS = {1: 29392, 3: 29396}
STEPS = {
    "AddPartitionsToTxnHandler": "add the partition",
    "SendProduceReqHandler": "produce, acks=all",
    "EndTxnHandler": "commit (EndTxn)",
}


@dataclass
class StepTimes:
    """Wall time in each of aiokafka's transaction requests, and how often the broker said
    "not yet" (the wait before trying again included)."""

    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    retries: Counter[str] = field(default_factory=Counter)

    def reset(self) -> None:
        self.seconds.clear()
        self.retries.clear()


STEP_TIMES = StepTimes()
Handler = Callable[[Any, int], Coroutine[Any, Any, bool]]


def _timed(do: Handler) -> Handler:
    async def timed(handler: Any, node_id: int) -> bool:
        started = time.perf_counter()
        done = await do(handler, node_id)
        name = type(handler).__name__
        STEP_TIMES.seconds[name] += time.perf_counter() - started
        if done is False:  # the produce handler answers None when it is done
            STEP_TIMES.retries[name] += 1
        return done

    return timed


@dataclass(frozen=True)
class Measured:
    per_transaction_ms: float
    p99_ms: float
    step_ms: dict[str, float]
    retries: dict[str, float]


async def transactions(nodes: int, count: int, marker_waits_ms: list[int]) -> dict[int, Measured]:
    """For each wait between asking again while markers are written: ``count`` transactions."""
    measured = {}
    with tempfile.TemporaryDirectory() as scratch, scratch_broker(PORTS[nodes], scratch, nodes=nodes) as broker:
        key = bench_keys().signing_key("tasks", create=True)
        for wait_ms in marker_waits_ms:
            producer = EventProducer(
                broker.settings,
                client_id="bench-transactions",
                signing_key=key,
                transactional_id=f"policytrack-tasks-bench-{uuid.uuid4().hex[:8]}",
            )
            aiokafka_sender.BACKOFF_OVERRIDE = wait_ms / 1000
            async with producer:
                measured[wait_ms] = await _series(producer, count)
    return measured


async def _series(producer: EventProducer, count: int) -> Measured:
    times: list[float] = []
    for n in range(count + 20):
        if n == 20:  # the first ones find the coordinator and warm the connections
            STEP_TIMES.reset()
            times.clear()
        event = new_event(
            TaskProgressReported(task_id="task-bench", percent=n % 101), actor="u-bench", actordept=Department.JILIN
        )
        started = time.perf_counter()
        async with producer.transaction():
            await (await producer.enqueue(event))
        times.append(time.perf_counter() - started)
    return Measured(
        per_transaction_ms=statistics.fmean(times) * 1000,
        p99_ms=statistics.quantiles(times, n=100)[98] * 1000,
        step_ms={name: STEP_TIMES.seconds[name] / count * 1000 for name in STEPS},
        retries={name: STEP_TIMES.retries[name] / count for name in STEPS},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transactions", type=int, default=scaled(300, 50))
    parser.add_argument("--marker-waits-ms", default="20,5,2", help="aiokafka's is 20")
    args = parser.parse_args()
    waits = [int(w) for w in args.marker_waits_ms.split(",")]
    # Measuring aiokafka's own steps: every transaction request goes through a handler's do.
    for handler in (aiokafka_sender.BaseHandler, aiokafka_sender.SendProduceReqHandler):
        handler.do = _timed(handler.do)  # SendProduceReqHandler has a do of its own
    one = asyncio.run(transactions(1, args.transactions, waits))
    three = asyncio.run(transactions(3, args.transactions, waits))
    results = Results("transactions")
    print(f"\nOne event per transaction, {args.transactions} in a row (baseline: one broker, same wait)")
    for wait in waits:
        print(f"  waiting {wait} ms before asking again while the last transaction's markers are written:")
        results.add(
            Row(
                f"transaction, 3 brokers, {wait} ms (mean)",
                three[wait].per_transaction_ms,
                "ms",
                one[wait].per_transaction_ms,
            )
        )
        results.add(Row(f"transaction, 3 brokers, {wait} ms (p99)", three[wait].p99_ms, "ms", one[wait].p99_ms))
        for name, step in STEPS.items():
            results.add(Row(f"  {step}", three[wait].step_ms[name], "ms", one[wait].step_ms[name]))
            results.add(Row(f"  {step}: tries again", three[wait].retries[name], "/txn", one[wait].retries[name]))
    results.note("the rest of a transaction's time is the client's own work (encoding, signing, its event loop)")
    results.save()


if __name__ == "__main__":
    main()
